"""Squeeze-and-Excitation (timm's SEModule, under lga's constructor shape).

Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018.
"""

from timm.layers import SEModule

from .registry import ATTENTIONS


@ATTENTIONS.register("se")
class SqueezeExcite(SEModule):
    """Global average pool -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid gate.

    Args:
        channels: C.
        reduction: C / hidden channels.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, reduction: int = 16) -> None:
        super().__init__(channels, rd_ratio=1.0 / reduction, rd_divisor=1)
