"""ResNet-18 backbone with attention slots (torchvision's BasicBlock), width-scalable.

He et al., "Deep Residual Learning for Image Recognition", CVPR 2016.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torchvision.models.resnet import BasicBlock

from .base import Backbone
from .registry import BACKBONES


@BACKBONES.register("resnet18")
class ResNet18(Backbone):
    """ResNet-18: stem + four stages of two basic blocks, widths ``width * (1, 2, 4, 8)``.

    Args:
        width: channels of the first stage (64 is the standard network; 18 gives
            about 0.9 M parameters, the LGA paper's width-scaled detector backbone).
        stem_stride: 2 is ImageNet's stem (7x7 stride-2 conv + max-pool, stride 4 in
            all); 1 is a 3x3 stride-1 conv without pooling, for 28-32 px inputs.
        in_chans, attention, placement, num_outputs: see :class:`Backbone`.
    Shape: (B, in_chans, H, W) -> OrderedDict of (B, C_i, H / s_i, W / s_i).
    """

    def __init__(self, *, width: int = 64, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if width <= 0:
            raise ValueError(f"width must be positive, got {width!r}")
        in_chans = self.in_chans
        if self.stem_stride == 2:
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, width, 7, stride=2, padding=3, bias=False),
                nn.BatchNorm2d(width), nn.ReLU(inplace=True),
                nn.MaxPool2d(3, stride=2, padding=1),
            )  # fmt: skip
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_chans, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True)
            )
        stages, channels, strides = [], [], []
        in_ch, stride = width, 4 if self.stem_stride == 2 else 1  # the ImageNet stem's conv + max-pool
        for i, mult in enumerate((1, 2, 4, 8)):
            out_ch, block_stride = width * mult, 1 if i == 0 else 2
            downsample = None
            if block_stride != 1 or in_ch != out_ch:
                downsample = nn.Sequential(
                    nn.Conv2d(in_ch, out_ch, 1, stride=block_stride, bias=False), nn.BatchNorm2d(out_ch)
                )
            stages.append(
                nn.Sequential(BasicBlock(in_ch, out_ch, block_stride, downsample), BasicBlock(out_ch, out_ch))
            )
            stride *= block_stride
            channels.append(out_ch)
            strides.append(stride)
            in_ch = out_ch
        self.stages = nn.ModuleList(stages)
        self.stage_channels, self.stage_strides = channels, strides
        self._build_attention()
