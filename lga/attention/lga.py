"""Local-Global Attention, fast implementation (same function and state_dict as the reference).

Shao, "Local-Global Attention: An Adaptive Mechanism for Multi-Scale Feature
Integration", arXiv:2411.09604 (2024).

What differs from ``lga_reference.py`` is only how the same numbers are computed:
- all convolutions run in channels_last (depthwise convs are several times faster
  on CPU that way);
- the local depthwise kernels are zero-padded to the largest one and run as one
  grouped conv, and all query/key/value projections run as one grouped 1x1 conv;
- the attention of every branch (local and global) is one batched matmul + softmax;
- the scale weights sum to one, so ``sum_i w_i (v_i + x)`` is folded to
  ``x + sum_i w_i v_i``, and the branch averaging and alphas are folded into one
  weighted sum before the output conv;
- the positional table is not resized when it already matches the map.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .lga_reference import LocalGlobalAttentionBase, channel_attention
from .registry import register_attention, register_attention_preset


@register_attention("lga")
class LocalGlobalAttention(LocalGlobalAttentionBase):
    """Local-Global Attention (fast). Shape: (B, C, H, W) -> (B, C, H, W).

    Options: see :class:`lga.attention.lga_reference.LocalGlobalAttentionBase`.
    """

    def _attend(self, qkv: torch.Tensor) -> torch.Tensor:
        b, c3, h, w = qkv.shape
        q, k, v = qkv.contiguous().view(b, 3, self.num_heads, self.head_dim, h * w).unbind(1)
        return channel_attention(q, k, v, self.scale).view(b, c3 // 3, h, w)

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

        # convs in channels_last (fast on CPU); attention on an NCHW copy, per branch
        a_local, a_global = self.fusion_weights()
        fused, residual = 0, 0  # residual: total weight of the raw input added back by the branches
        if self.local_dw:
            coef = a_local / len(self.local_dw)
            for dw, qkv in zip(self.local_dw, self.local_qkv):
                fused = fused + coef * self._attend(qkv(dw(y)))
            residual = residual + a_local
        if self.global_dw is not None:
            fused = fused + a_global * self._attend(self.global_qkv(self.global_dw(y)))
            residual = residual + a_global
        fused = fused + residual * x
        return self.out_proj(fused.contiguous(memory_format=torch.channels_last))


# the paper's ablations: local branch only (LA), global branch only (GA)
register_attention_preset("la", "lga", branches="local")
register_attention_preset("ga", "lga", branches="global")
