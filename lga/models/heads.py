"""Task heads that sit on a backbone's feature maps."""

from __future__ import annotations

import torch
from torch import nn


class ClassificationHead(nn.Module):
    """Optional 1x1 expansion (MobileNetV3's last conv) -> global average pool -> dropout -> linear.

    Args:
        in_channels: channels of the backbone's last map.
        num_classes: outputs.
        hidden_channels: width of the 1x1 conv + BN + Hardswish before pooling; 0 skips it.
        dropout: before the linear layer.
    Shape: (B, in_channels, H, W) -> (B, num_classes).
    """

    def __init__(self, in_channels: int, num_classes: int, *, hidden_channels: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        if hidden_channels:
            layers += [
                nn.Conv2d(in_channels, hidden_channels, 1, bias=False),
                nn.BatchNorm2d(hidden_channels),
                nn.Hardswish(),
            ]
            in_channels = hidden_channels
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Dropout(dropout), nn.Linear(in_channels, num_classes)]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)
