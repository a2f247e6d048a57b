"""Necks: what turns a backbone's multi-scale maps into the maps a detection head reads."""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7

EXTRA_LEVELS = (0, 1, 2)


class BackboneWithFPN(nn.Module):
    """A :class:`lga.backbones.Backbone` followed by torchvision's FPN (Lin et al., 2017).

    Follows torchvision's detection contract: ``out_channels`` (one width for every
    level) and ``forward(x)`` returning an ordered dict of maps, fine to coarse.

    Args:
        backbone: returns maps at strides 8/16/32 for detection (``stem_stride=2``).
        channels: FPN width.
        extra_levels: coarser levels past the backbone's: 0, 1 (P6 by max-pooling)
            or 2 (P6, P7 by strided convs, as FCOS and RetinaNet on COCO). Small-object
            data needs none.
    Shape: (B, C, H, W) -> {"0": (B, channels, H/8, W/8), "1": ..., ...}.
    """

    def __init__(self, backbone: nn.Module, *, channels: int = 64, extra_levels: int = 0) -> None:
        super().__init__()
        if extra_levels not in EXTRA_LEVELS:
            raise ValueError(f"extra_levels must be one of {EXTRA_LEVELS}, got {extra_levels!r}")
        extra = {0: None, 1: LastLevelMaxPool(), 2: LastLevelP6P7(channels, channels)}[extra_levels]
        self.body = backbone
        self.fpn = FeaturePyramidNetwork(list(backbone.out_channels), channels, extra_blocks=extra)
        self.out_channels = channels
        self.strides = list(backbone.strides) + [backbone.strides[-1] * 2**i for i in range(1, extra_levels + 1)]

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        return self.fpn(self.body(x))
