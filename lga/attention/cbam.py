"""Convolutional Block Attention Module.

Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018.

``cbam`` is the variant the LGA paper compared against (the Ultralytics one):
channel attention is a single 1x1 conv + sigmoid on the average-pooled map (no
reduction MLP), spatial attention a 7x7 conv over the channel-wise mean and max maps.
``cbam_mlp`` is the original paper's module (timm's CbamModule: shared reduction
MLP over average- and max-pooled descriptors).
"""

import torch
from timm.layers.cbam import CbamModule
from torch import nn

from .registry import ATTENTIONS


@ATTENTIONS.register("cbam")
class CBAM(nn.Module):
    """CBAM as in the LGA paper's code base. Shape: (B, C, H, W) -> (B, C, H, W).

    Args:
        channels: C.
        spatial_kernel_size: kernel of the spatial attention conv (3 or 7 in practice).
    """

    def __init__(self, channels: int, *, spatial_kernel_size: int = 7) -> None:
        super().__init__()
        if spatial_kernel_size % 2 == 0:
            raise ValueError(f"spatial_kernel_size must be odd, got {spatial_kernel_size}")
        self.channel_fc = nn.Conv2d(channels, channels, 1)
        self.spatial_conv = nn.Conv2d(2, 1, spatial_kernel_size, padding=spatial_kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.sigmoid(self.channel_fc(x.mean((2, 3), keepdim=True)))
        desc = torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)
        return x * torch.sigmoid(self.spatial_conv(desc))


@ATTENTIONS.register("cbam_mlp")
class CBAMOriginal(CbamModule):
    """The original CBAM (reduction MLP on avg+max pooled descriptors, 7x7 spatial conv).

    Args:
        channels: C.
        reduction: C / hidden channels of the shared MLP.
        spatial_kernel_size: kernel of the spatial attention conv.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, reduction: int = 16, spatial_kernel_size: int = 7) -> None:
        super().__init__(channels, rd_ratio=1.0 / reduction, spatial_kernel_size=spatial_kernel_size)
