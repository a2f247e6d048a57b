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
  (about a third of the FLOPs, and none of q/k/v is saved for backward).
  Because the published conv has ``groups = heads`` and splits its ``3C`` outputs
  into q|k|v afterwards, head h's q, k and v read input groups ``h//3``,
  ``(H+h)//3`` and ``(2H+h)//3``; :func:`qkv_source_groups` spells this out.
- **Everything stays channels_last.** Depthwise convs (the 11x11 one above all) are
  several times faster that way on CPU, and the Gram and output products read the
  ``(B, N, C)`` token view of a channels_last map directly, so no layout copies.
- The scale weights sum to one, so ``sum_i w_i (v_i + x)`` is ``x + sum_i w_i v_i``;
  maps already at full size are not resized, nor is the positional table when it
  matches.
- The branch average, the alphas and the raw-input residuals are folded into one
  weighted sum: ``x`` is added once, with weight ``a_local + a_global``.

Measured and dropped (slower on CPU with torch 2.14): zero-padding the 3/5/7 local
kernels into one grouped 7x7 conv, one grouped 1x1 conv for all qkv projections,
one batched matmul for all branches, FFT convolution for the 11x11 kernel. What is
left is mostly oneDNN's depthwise weight gradient; ``python -m lga.bench`` measures.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F
from torch import nn

from .lga_reference import LocalGlobalAttentionBase
from .registry import register_attention, register_attention_preset


@lru_cache(maxsize=None)
def qkv_source_groups(num_heads: int) -> tuple[tuple[int, ...], ...]:
    """For q, k, v: the input group (of ``C/heads`` channels) each head reads.

    The qkv conv maps input group g to output channels ``3d*g .. 3d*(g+1)``; output
    channels ``t*C + h*d ..`` are role t (q, k, v) of head h, so they come from group
    ``(t*H + h) // 3``. Each role reads a contiguous run of groups.
    """
    return tuple(tuple((role * num_heads + h) // 3 for h in range(num_heads)) for role in range(3))


def _place(weight: torch.Tensor, groups: tuple[int, ...]) -> torch.Tensor:
    """(H, d, d+1) per-head [W | b] -> (H, d, G*d+1): W moved to its group's columns of a run of G groups."""
    heads, d = weight.shape[:2]
    first = groups[0]
    onehot = F.one_hot(torch.tensor([g - first for g in groups], device=weight.device), groups[-1] - first + 1)
    placed = torch.einsum("hrk,hg->hrgk", weight[..., :d], onehot.to(weight.dtype)).reshape(heads, d, -1)
    return torch.cat([placed, weight[..., d:]], -1)


@register_attention("lga")
class LocalGlobalAttention(LocalGlobalAttentionBase):
    """Local-Global Attention (fast). Shape: (B, C, H, W) -> (B, C, H, W).

    Options: see :class:`lga.attention.lga_reference.LocalGlobalAttentionBase`.
    """

    def _branch(self, z: torch.Tensor, qkv: nn.Conv2d, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One branch's channel attention on tokens ``z`` (B, N, C), scaled by ``weight``.

        Returns ``(z_v, mix, bias)`` with the branch output ``z_v @ mix + bias``:
        z_v (B, N, G*d) the groups v reads, mix (B, G*d, C), bias (B, 1, C).
        """
        b, n, c = z.shape
        heads, d = self.num_heads, self.head_dim
        sources = qkv_source_groups(heads)
        if heads % 3 == 0:  # q, k, v read the three thirds of the channels: split without copies
            z_q, z_k, z_v = z.view(b, n, 3, c // 3).unbind(2)
        else:
            z_q, z_k, z_v = (z.narrow(2, groups[0] * d, (groups[-1] - groups[0] + 1) * d) for groups in sources)
        w = torch.cat([qkv.weight.view(3, heads, d, d), qkv.bias.view(3, heads, d, 1)], -1)  # [W | b] per role, head

        # Gram matrix of [z_q; 1] and [z_k; 1]: (B, Gq*d+1, Gk*d+1)
        ones = z.new_full((b, 1, 1), float(n))
        gram = torch.cat(
            [
                torch.cat([z_q.transpose(1, 2) @ z_k, z_q.sum(1).unsqueeze(2)], 2),
                torch.cat([z_k.sum(1).unsqueeze(1), ones], 2),
            ],
            1,
        )
        place_q, place_k = _place(w[0], sources[0]), _place(w[1], sources[1])
        logits = place_q @ gram.unsqueeze(1) @ place_k.transpose(1, 2)  # Q K^T per head: (B, H, d, d)
        mixed = weight * (torch.softmax(logits * self.scale, -1) @ w[2])  # A [Wv | bv]: (B, H, d, d+1)

        first, count = sources[2][0], sources[2][-1] - sources[2][0] + 1
        onehot = F.one_hot(torch.tensor([g - first for g in sources[2]], device=z.device), count).to(mixed.dtype)
        mix = torch.einsum("bhrk,hg->bgkhr", mixed[..., :d], onehot).reshape(b, count * d, c)
        return z_v, mix, mixed[..., d].reshape(b, 1, c)

    def _multi_scale(self, x: torch.Tensor) -> torch.Tensor:
        if self.scale_weight is None:
            return x
        size = x.shape[-2:]
        weights = torch.softmax(self.scale_weight(x), dim=1)
        y = x
        for i, view in enumerate(self.multi_scale):
            v = view(x)
            if v.shape[-2:] != size:
                v = F.interpolate(v, size=size, mode="nearest")
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
                pos = F.interpolate(pos, size=(h, w), mode="nearest")
            y = y + pos

        def tokens(t: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) channels_last -> (B, H*W, C) view
            return t.contiguous(memory_format=torch.channels_last).permute(0, 2, 3, 1).reshape(b, h * w, c)

        a_local, a_global = self.fusion_weights()
        branches, residual = [], 0  # residual: total weight of the raw input the branches add back
        if self.local_dw:
            weight = a_local / len(self.local_dw)
            branches += [self._branch(tokens(dw(y)), qkv, weight) for dw, qkv in zip(self.local_dw, self.local_qkv)]
            residual = residual + a_local
        if self.global_dw is not None:
            branches.append(self._branch(tokens(self.global_dw(y)), self.global_qkv, a_global))
            residual = residual + a_global
        out = residual * tokens(x) + sum(bias for _, _, bias in branches)
        for z_v, mix, _ in branches:
            out = torch.baddbmm(out, z_v, mix)
        return self.out_proj(out.view(b, h, w, c).permute(0, 3, 1, 2))


# the paper's ablations: local branch only (LA), global branch only (GA)
register_attention_preset("la", "lga", branches="local")
register_attention_preset("ga", "lga", branches="global")
