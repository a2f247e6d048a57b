"""Multi-head self-attention over positions, bottleneck-transformer style.

Srinivas et al., "Bottleneck Transformers for Visual Recognition", CVPR 2021.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ATTENTIONS


@ATTENTIONS.register("mhsa")
class MultiHeadSelfAttention(nn.Module):
    """1x1 query/key/value convs, softmax attention across the H*W positions per head.

    With ``pos_embed``, BoTNet's content-position term: learnable height and width
    tables ``(heads, C/heads, pos_size)`` summed into a map, resized (bilinear) to
    (H, W) and added to the keys, so logits are ``q.k + q.r``. Cost is quadratic in H*W.
    (timm's ``BottleneckAttn`` fixes the feature size at construction; this block takes
    any input size, which the sweeps over datasets and input sizes need.)

    Args:
        channels: C, divisible by ``num_heads``.
        num_heads: attention heads.
        pos_embed: add the position term.
        pos_size: side of the position tables.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(self, channels: int, *, num_heads: int = 4, pos_embed: bool = True, pos_size: int = 14) -> None:
        super().__init__()
        if num_heads <= 0 or channels % num_heads:
            raise ValueError(f"num_heads={num_heads} does not divide channels={channels}")
        self.num_heads, self.head_dim = num_heads, channels // num_heads
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        if pos_embed:
            self.rel_h = nn.Parameter(torch.randn(1, num_heads, self.head_dim, pos_size, 1) * 0.02)
            self.rel_w = nn.Parameter(torch.randn(1, num_heads, self.head_dim, 1, pos_size) * 0.02)
        else:
            self.rel_h = self.rel_w = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(x).reshape(b, 3, self.num_heads, self.head_dim, h * w).unbind(1)
        if self.rel_h is not None:
            pos = (self.rel_h + self.rel_w).flatten(1, 2)  # (1, C, P, P)
            pos = F.interpolate(pos, size=(h, w), mode="bilinear", align_corners=False)
            k = k + pos.reshape(1, self.num_heads, self.head_dim, h * w)
        out = F.scaled_dot_product_attention(q.transpose(-2, -1), k.transpose(-2, -1), v.transpose(-2, -1))
        return out.transpose(-2, -1).reshape(b, c, h, w)
