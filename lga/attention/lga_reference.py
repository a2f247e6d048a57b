"""Local-Global Attention computed step by step: the oracle the fast block is tested against.

Shao, "Local-Global Attention: An Adaptive Mechanism for Multi-Scale Feature
Integration", arXiv:2411.09604 (2024). It follows the released module's order of
operations, with either attention product (``product``): the paper's ``A V``, or the
released module's einsum, which sums the key index and the value's channel index on
their own (see :mod:`lga.attention.lga_base`).
"""

from __future__ import annotations

import torch
from torch import nn

from .lga_base import LocalGlobalAttentionBase
from .registry import ATTENTIONS
from .resize import resize_nearest


def channel_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, logit_scale: float, product: str
) -> torch.Tensor:
    """Attention across the channels of a head: (..., d, N) -> (..., d, N).

    ``A = softmax(q k^T * logit_scale)`` is ``d x d``; positions N are summed, so the cost
    is linear in N. ``paper``: ``A v``. ``released``: ``einsum("bhij,bhkp->bhip", A, v)``,
    the released contraction: j and k are summed separately, which gives
    ``(sum_j A_ij) (sum_k v_kp) = sum_k v_kp`` for every channel i.
    """
    attn = torch.softmax(q @ k.transpose(-2, -1) * logit_scale, dim=-1)
    if product == "released":
        return torch.einsum("...ij,...kp->...ip", attn, v)
    return attn @ v


@ATTENTIONS.register("lga_reference")
class LocalGlobalAttentionReference(LocalGlobalAttentionBase):
    """Local-Global Attention, step by step in the released module's order.

    Readable and slow; use :class:`lga.attention.LocalGlobalAttention` for training.
    Options: see :class:`lga.attention.lga_base.LocalGlobalAttentionBase`.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def _attend(self, y: torch.Tensor, dw: nn.Conv2d, qkv: nn.Conv2d) -> torch.Tensor:
        b, c, h, w = y.shape
        q, k, v = qkv(dw(y)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, self.head_dim, h * w) for t in (q, k, v))
        return channel_attention(q, k, v, self.logit_scale, self.product).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj_in is not None:
            x = self.proj_in(x)
        size = x.shape[-2:]

        # 1-2. multi-scale views, weighted per pixel by a softmax over scales
        maps = [x] + [resize_nearest(view(x), size) + x for view in self.multi_scale]
        if self.scale_weight is not None:
            weights = torch.softmax(self.scale_weight(x), dim=1)
            y = sum(weights[:, i : i + 1] * m for i, m in enumerate(maps))
        else:
            y = x

        # 3. positional table, resized to the map
        if self.pos_embed is not None:
            y = y + resize_nearest(self.pos_embed, size)

        # 4-6. local and global channel attention, each adding the raw input back
        alphas = self.fusion_weights()
        out = 0
        if self.local_dw:
            local = [self._attend(y, dw, qkv) + x for dw, qkv in zip(self.local_dw, self.local_qkv)]
            out = out + alphas["local"] * (sum(local) / len(local))
        if self.global_dw is not None:
            out = out + alphas["global"] * (self._attend(y, self.global_dw, self.global_qkv) + x)
        return self.out_proj(out)
