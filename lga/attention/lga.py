"""Local-Global Attention, fast implementation (same function and state_dict as the reference).

Shao, "Local-Global Attention: An Adaptive Mechanism for Multi-Scale Feature
Integration", arXiv:2411.09604 (2024).

What differs from ``lga_reference.py`` is only how the same numbers are computed:
- every convolution runs in channels_last: depthwise convs (the 11x11 one above all)
  are 2-4x faster that way on CPU;
- the scale weights sum to one, so ``sum_i w_i (v_i + x)`` is folded to
  ``x + sum_i w_i v_i``, and views already at full size are not resized;
- the positional table is not resized when it already matches the map;
- the branch average and the alphas are folded into one weighted sum, and the raw
  input is added once with weight ``a_local + a_global`` instead of once per branch.

Measured and dropped (slower on CPU with torch 2.14): zero-padding the 3/5/7 local
kernels into one grouped 7x7 conv, one grouped 1x1 conv for all qkv projections,
one batched matmul for all branches (the stacking copies between memory layouts
cost more than they save), and attention on the channels_last layout itself (one
C x C bmm with off-head blocks masked: no copies, but 6x the matmul FLOPs and more
saved memory; 0.92x the reference at 64x96x7x7). ``python -m lga.bench`` measures.
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
