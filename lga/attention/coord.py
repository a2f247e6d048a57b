"""Coordinate Attention.

Hou, Zhou and Feng, "Coordinate Attention for Efficient Mobile Network Design", CVPR 2021.
"""

import torch
from torch import nn

from .registry import ATTENTIONS


@ATTENTIONS.register("ca")
class CoordinateAttention(nn.Module):
    """Pool along W and along H, encode both with a shared 1x1 conv, gate x per row and per column.

    Args:
        channels: C.
        reduction: C / hidden channels (at least ``min_hidden``).
        min_hidden: lower bound on the hidden channels.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, reduction: int = 32, min_hidden: int = 8) -> None:
        super().__init__()
        hidden = max(min_hidden, channels // reduction)
        self.encode = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.BatchNorm2d(hidden), nn.Hardswish())
        self.gate_h = nn.Conv2d(hidden, channels, 1)
        self.gate_w = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        pooled_h = x.mean(3, keepdim=True)  # (B, C, H, 1)
        pooled_w = x.mean(2, keepdim=True).transpose(2, 3)  # (B, C, W, 1)
        y = self.encode(torch.cat([pooled_h, pooled_w], dim=2))
        y_h, y_w = y.split([h, w], dim=2)
        return x * torch.sigmoid(self.gate_h(y_h)) * torch.sigmoid(self.gate_w(y_w.transpose(2, 3)))
