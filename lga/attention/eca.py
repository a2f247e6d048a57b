"""Efficient Channel Attention (timm's EcaModule, under lga's constructor shape).

Wang et al., "ECA-Net: Efficient Channel Attention for Deep CNNs", CVPR 2020.
"""

from timm.layers import EcaModule

from .registry import ATTENTIONS


@ATTENTIONS.register("eca")
class EfficientChannelAttention(EcaModule):
    """Global average pool -> 1D conv across channels -> sigmoid gate.

    Args:
        channels: C (picks the 1D kernel size adaptively when ``kernel_size`` is None).
        kernel_size: 1D kernel over channels; ``None`` for the paper's adaptive size.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, kernel_size: int | None = None) -> None:
        if kernel_size is None:
            super().__init__(channels)
        else:
            super().__init__(kernel_size=kernel_size)
