"""No attention: the baseline every block is compared against."""

from torch import nn

from .registry import ATTENTIONS


@ATTENTIONS.register("none")
class NoAttention(nn.Identity):
    """Identity. Shape: (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels
