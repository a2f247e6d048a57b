"""Local-Global Attention, fast implementation (same function and state_dict as the reference).

Shao, "Local-Global Attention: An Adaptive Mechanism for Multi-Scale Feature
Integration", arXiv:2411.09604 (2024).

What differs from ``lga_reference.py`` is only how the same numbers are computed:

- **The qkv projection is folded into the attention.** A branch computes
  ``softmax(Q K^T * s) V`` with ``Q = Wq Z + bq`` (Z: the depthwise conv's output, a
  ``d x N`` block per head). ``Q K^T = [Wq bq] [Z;1][Z;1]^T [Wk bk]^T``, so only the
  ``(d+1) x (d+1)`` Gram matrix of Z is needed, and ``A V = (A [Wv bv]) [Z;1]``. The
  ``3C``-channel q/k/v maps are never built: per branch, one Gram product and one
  output product replace the grouped 1x1 conv and the two attention products
  (about half the FLOPs at 6 heads, and no q/k/v saved for backward).
  Because the published conv has ``groups = heads`` and splits its ``3C`` outputs
  into q|k|v afterwards, head h's q, k and v read input groups ``h//3``,
  ``(H+h)//3`` and ``(2H+h)//3``; :func:`qkv_source_groups` spells this out.
  Below ``gram_min_pixels`` (32) pixels the per-head ``(d+1)^2`` products cost more
  than q/k/v themselves, so small maps build q/k/v directly (one grouped conv1d).
- **Everything stays channels_last.** Depthwise convs (the 11x11 one above all) are
  several times faster that way on CPU, and the Gram and output products read the
  ``(B, N, C)`` token view of a channels_last map directly, so no layout copies.
- **Maps with fewer pixels than a kernel has taps** (7x7 under the 11x11 kernel, 1x1 maps)
  run that depthwise conv as one dense matrix per channel on CPU
  (:mod:`lga.attention.dense_depthwise`), where oneDNN's weight gradient is slow.
- The scale weights sum to one, so ``sum_i w_i (v_i + x)`` is ``x + sum_i w_i v_i``;
  maps already at full size are not resized, nor is the positional table when it
  matches.
- The branch average, the alphas and the raw-input residuals are folded into one
  weighted sum: ``x`` is added once, with weight ``a_local + a_global``.
- **The released product** (``product="released"``) only needs each head's sum of its
  value channels: ``sum_j (Wv_j z + bv_j) = (sum_j Wv_j) z + sum_j bv_j``. So a branch
  is one ``C_v x heads`` matmul of the value channels' depthwise output, broadcast over
  each head's channels: no q, k, softmax or attention products, and the depthwise convs
  run on the value channels alone (a third of them at 6 heads), since the other
  channels only feed q and k.

Measured and dropped (slower on CPU with torch 2.14): zero-padding the 3/5/7 local
kernels into one grouped 7x7 conv, one grouped 1x1 conv for all qkv projections,
one batched matmul for all branches, FFT convolution for the 11x11 kernel (three
FFTs cost more than oneDNN's direct conv at these sizes). What is left is mostly
oneDNN's depthwise weight gradient; ``python -m lga.tools.bench`` measures.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .dense_depthwise import DenseDepthwise, dense_is_cheaper
from .lga_base import LocalGlobalAttentionBase
from .registry import ATTENTIONS, register_attention_preset
from .resize import resize_nearest
from .tensor_cache import tensor_cache


def qkv_source_groups(num_heads: int) -> tuple[tuple[int, ...], ...]:
    """For q, k, v: the input group (of ``C/heads`` channels) each head reads.

    The qkv conv maps input group g to output channels ``3d*g .. 3d*(g+1)``; output
    channels ``t*C + h*d ..`` are role t (q, k, v) of head h, so they come from group
    ``(t*H + h) // 3``. Each role reads a contiguous run of groups.
    """
    return tuple(tuple((role * num_heads + h) // 3 for h in range(num_heads)) for role in range(3))


def _span(groups: tuple[int, ...]) -> tuple[int, int]:
    """(first group, number of groups) of a role's contiguous run of groups."""
    return groups[0], groups[-1] - groups[0] + 1


@tensor_cache()
def _block_index(groups: tuple[int, ...], head_dim: int, device: torch.device) -> torch.Tensor:
    """(H, d+1): for each head, its rows of a run of groups' Gram matrix, then the row of ones (last)."""
    first, count = _span(groups)
    index = [[(g - first) * head_dim + r for r in range(head_dim)] + [count * head_dim] for g in groups]
    return torch.tensor(index, device=device)


@tensor_cache()
def _group_onehot(groups: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """(H, G): 1 where head h reads group g of the run."""
    first, count = _span(groups)
    return F.one_hot(torch.tensor([g - first for g in groups], device=device), count)


@ATTENTIONS.register("lga")
class LocalGlobalAttention(LocalGlobalAttentionBase):
    """Local-Global Attention (fast). Shape: (B, C, H, W) -> (B, C, H, W).

    Options: see :class:`lga.attention.lga_base.LocalGlobalAttentionBase`.
    """

    # below this many pixels the q/k/v maps are cheaper to build than the Gram route's
    # per-head (d+1)^2 products (measured on CPU: 7x7 maps and up favour the Gram route)
    gram_min_pixels = 32

    def _attend(self, z: torch.Tensor, qkv: nn.Conv2d, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out + weight * attention(z)`` for one branch; z, out: tokens (B, N, C)."""
        if z.shape[1] < self.gram_min_pixels:
            b, n, c = z.shape
            qkv_maps = F.conv1d(z.transpose(1, 2), qkv.weight.squeeze(-1), qkv.bias, groups=self.num_heads)
            q, k, v = qkv_maps.view(b, 3, self.num_heads, self.head_dim, n).unbind(1)
            attn = torch.softmax(q @ k.transpose(-2, -1) * self.logit_scale, -1)
            return out + weight * (attn @ v).view(b, c, n).transpose(1, 2)
        return self._attend_gram(z, qkv, weight, out)

    def _attend_gram(self, z: torch.Tensor, qkv: nn.Conv2d, weight: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """:meth:`_attend` without q/k/v maps: from the Gram matrix of z (see the module docstring)."""
        b, n, c = z.shape
        heads, d = self.num_heads, self.head_dim
        sources = qkv_source_groups(heads)
        if heads % 3 == 0:  # q, k, v read the three thirds of the channels: split without copies
            z_q, z_k, z_v = z.view(b, n, 3, c // 3).unbind(2)
        else:
            z_q, z_k, z_v = (z.narrow(2, first * d, count * d) for first, count in map(_span, sources))
        w = torch.cat([qkv.weight.view(3, heads, d, d), qkv.bias.view(3, heads, d, 1)], -1)  # [W | b] per role, head

        # Gram matrix of [z_q; 1] and [z_k; 1]: (B, Gq*d+1, Gk*d+1), then each head's (d+1)^2 block
        count = z.new_full((b, 1, 1), float(n))  # the ones row of [z; 1] summed over the n positions
        gram = torch.cat(
            [
                torch.cat([z_q.transpose(1, 2) @ z_k, z_q.sum(1).unsqueeze(2)], 2),
                torch.cat([z_k.sum(1).unsqueeze(1), count], 2),
            ],
            1,
        )
        rows, cols = (_block_index(groups, d, z.device) for groups in sources[:2])
        logits = w[0] @ gram[:, rows.unsqueeze(2), cols.unsqueeze(1)] @ w[1].transpose(-1, -2)  # Q K^T: (B, H, d, d)
        mixed = weight * (torch.softmax(logits * self.logit_scale, -1) @ w[2])  # A [Wv | bv]: (B, H, d, d+1)

        # out += z_v @ mix + bias, mix (B, Gv*d, C) holding each head's block at its v group's rows
        onehot = _group_onehot(sources[2], z.device).to(mixed.dtype)
        mix = torch.einsum("bhrk,hg->bgkhr", mixed[..., :d], onehot).reshape(b, -1, c)
        return torch.baddbmm(out + mixed[..., d].reshape(b, 1, c), z_v, mix)

    def _attend_released(
        self, z_v: torch.Tensor, qkv: nn.Conv2d, weight: torch.Tensor, out: torch.Tensor
    ) -> torch.Tensor:
        """``out + weight * branch`` for the released product; z_v: tokens (B, N, Gv*d) of the
        value heads' input groups. Every channel of head h gets the sum of h's value channels."""
        b, n, _ = z_v.shape
        heads, d = self.num_heads, self.head_dim
        sources = qkv_source_groups(heads)[2]
        head_weight = qkv.weight.view(3, heads, d, d)[2].sum(1)  # (H, d): the rows of Wv summed per head
        head_bias = qkv.bias.view(3, heads, d)[2].sum(1)  # (H,)
        onehot = _group_onehot(sources, z_v.device).to(head_weight.dtype)
        project = torch.einsum("hk,hg->gkh", head_weight, onehot).reshape(-1, heads)  # (Gv*d, H)
        head_sums = torch.addmm(weight * head_bias, z_v.reshape(b * n, -1), weight * project)  # (B*N, H)
        return out + head_sums.view(b, n, heads, 1).expand(b, n, heads, d).reshape(b, n, heads * d)

    def _multi_scale(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale_weight is None:
            return x
        size = x.shape[-2:]
        weights = torch.softmax(self.scale_weight(x), dim=1)
        y = x
        for i, view in enumerate(self.multi_scale):
            v = view(x)
            if v.shape[-2:] != size:
                v = resize_nearest(v, size)
            y = y + weights[:, i + 1 : i + 2] * v
        return y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last)
        if self.proj_in is not None:
            x = self.proj_in(x)
        b, c, h, w = x.shape
        y = self._multi_scale(x)
        if self.pos_embed is not None:
            pos = self.pos_embed
            if pos.shape[-2:] != (h, w):
                pos = resize_nearest(pos, (h, w))
            y = y + pos

        def tokens(t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) channels_last -> (B, H*W, C) view
            return t.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(b, h * w, c)

        released = self.product == "released"
        # the released product reads only the value heads' groups; their channels alone go through the depthwise convs
        first, count = _span(qkv_source_groups(self.num_heads)[2]) if released else (0, self.num_heads)
        channels = slice(first * self.head_dim, (first + count) * self.head_dim)
        y_in = y[:, channels] if released else y
        columns = None  # y_in as (C_in, B, H*W), built once for the depthwise convs that run dense

        def depthwise(conv: nn.Conv2d) -> torch.Tensor:
            nonlocal columns
            weight, bias = (conv.weight[channels], conv.bias[channels]) if released else (conv.weight, conv.bias)
            # on CPU, maps with fewer pixels than kernel taps run faster as dense matmuls than in oneDNN
            if y.device.type != "cpu" or not dense_is_cheaper(h, w, conv.kernel_size[0]):
                z = F.conv2d(y_in, weight, bias, padding=conv.padding, groups=weight.shape[0])
                return z.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(b, h * w, -1)
            if columns is None:
                columns = y_in.permute(1, 0, 2, 3).reshape(-1, b, h * w)
            return DenseDepthwise.apply(columns, weight, bias, h, w)

        alphas = self.fusion_weights()
        branches, residual = [], 0  # residual: total weight of the raw input the branches add back
        if self.local_dw:
            weight = alphas["local"] / len(self.local_dw)
            branches += [(dw, qkv, weight) for dw, qkv in zip(self.local_dw, self.local_qkv)]
            residual = residual + alphas["local"]
        if self.global_dw is not None:
            branches.append((self.global_dw, self.global_qkv, alphas["global"]))
            residual = residual + alphas["global"]
        attend = self._attend_released if released else self._attend
        out = residual * tokens(x)
        for dw, qkv, weight in branches:
            out = attend(depthwise(dw), qkv, weight, out)
        return self.out_proj(out.view(b, h, w, c).permute(0, 3, 1, 2))


# the paper's ablations: local branch only (LA), global branch only (GA)
register_attention_preset("la", "lga", branches="local")
register_attention_preset("ga", "lga", branches="global")
# the released module: its attention product and its position-table initialisation
register_attention_preset("lga_released", "lga", product="released", pos_init_std=1.0)
register_attention_preset("la_released", "lga_released", branches="local")
register_attention_preset("ga_released", "lga_released", branches="global")
