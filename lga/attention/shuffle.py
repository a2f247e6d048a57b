"""Shuffle Attention.

Zhang and Yang, "SA-Net: Shuffle Attention for Deep Convolutional Neural Networks", ICASSP 2021.
"""

from __future__ import annotations

import torch
from torch import nn

from .registry import ATTENTIONS


@ATTENTIONS.register("sa")
class ShuffleAttention(nn.Module):
    """Split channels into groups; in each, half gets a channel gate (pooled, affine, sigmoid)
    and half a spatial gate (GroupNorm, affine, sigmoid); then shuffle channels across halves.

    Args:
        channels: C, divisible by ``2 * groups``.
        groups: channel groups (the paper uses 64 on ResNet-50). ``None`` picks the
            largest of 8, 7, ..., 1 that divides ``C / 2``, so every stage of a narrow
            backbone can take the block.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, groups: int | None = None) -> None:
        super().__init__()
        if groups is None:
            if channels % 2:
                raise ValueError(f"shuffle attention needs an even channel count, got channels={channels}")
            groups = next(g for g in range(8, 0, -1) if channels % (2 * g) == 0)
        if groups <= 0 or channels % (2 * groups):
            raise ValueError(
                f"shuffle attention needs channels divisible by 2*groups; got channels={channels}, groups={groups}"
            )
        self.groups = groups
        half = channels // (2 * groups)
        self.channel_weight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.channel_bias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.spatial_weight = nn.Parameter(torch.zeros(1, half, 1, 1))
        self.spatial_bias = nn.Parameter(torch.ones(1, half, 1, 1))
        self.norm = nn.GroupNorm(half, half)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        x = x.reshape(b * self.groups, c // self.groups, h, w)
        xc, xs = x.chunk(2, dim=1)
        xc = xc * torch.sigmoid(self.channel_weight * xc.mean((2, 3), keepdim=True) + self.channel_bias)
        xs = xs * torch.sigmoid(self.spatial_weight * self.norm(xs) + self.spatial_bias)
        out = torch.cat([xc, xs], dim=1).reshape(b, 2, c // 2, h, w)
        return out.transpose(1, 2).reshape(b, c, h, w)  # channel shuffle across the two halves
