"""MobileNetV3 backbone with attention slots (torchvision's inverted residual blocks).

Howard et al., "Searching for MobileNetV3", ICCV 2019.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from torch import nn
from torchvision.models.mobilenetv3 import InvertedResidual, _mobilenet_v3_conf
from torchvision.ops.misc import Conv2dNormActivation

from .base import Backbone
from .registry import BACKBONES

VARIANTS = ("small", "large")


@BACKBONES.register("mobilenetv3")
class MobileNetV3(Backbone):
    """MobileNetV3 feature extractor (stem + inverted-residual stages).

    The final 1x1 expansion conv of the classifier network is left to the head, so
    the last stage has the narrow width (96 for small, 160 for large at width 1.0)
    where an attention block is cheap, as in the LGA paper.

    Args:
        variant: ``small`` or ``large``.
        width_mult: channel multiplier (torchvision's rounding to multiples of 8).
        in_chans, stem_stride, attention, num_outputs: see :class:`Backbone`.
        placement: ``last`` (default, the paper's), ``stages``, or ``se`` (the
            attention block replaces each block's own squeeze-excitation).
    Shape: (B, in_chans, H, W) -> OrderedDict of (B, C_i, H / s_i, W / s_i).
    """

    def __init__(self, *, variant: str = "small", width_mult: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if variant not in VARIANTS:
            raise ValueError(f"unknown MobileNetV3 variant {variant!r}; valid: {', '.join(VARIANTS)}")
        settings, _ = _mobilenet_v3_conf(f"mobilenet_v3_{variant}", width_mult=width_mult)
        # torchvision's momentum 0.01 suits long ImageNet schedules; on short runs the
        # running statistics lag far behind and evaluation collapses to chance
        norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.1)
        se_layer = (lambda channels, _squeeze: self.make_attention(channels)) if self.placement == "se" else None

        self.stem = Conv2dNormActivation(
            self.in_chans,
            settings[0].input_channels,
            3,
            stride=self.stem_stride,
            norm_layer=norm,
            activation_layer=nn.Hardswish,
        )
        stages, channels, strides, stride = [], [], [], self.stem_stride
        for cfg in settings:
            if cfg.stride > 1 or not stages:
                stages.append([])
                stride *= cfg.stride
                strides.append(stride)
                channels.append(cfg.out_channels)
            block = InvertedResidual(cfg, norm) if se_layer is None else InvertedResidual(cfg, norm, se_layer)
            stages[-1].append(block)
            channels[-1] = cfg.out_channels
        self.stages = nn.ModuleList(nn.Sequential(*blocks) for blocks in stages)
        self.stage_channels, self.stage_strides = channels, strides
        self._build_attention()

    def extra_placements(self):
        return ("se",)
