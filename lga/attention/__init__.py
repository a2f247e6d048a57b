"""Attention blocks for convolutional feature maps, behind one name registry.

Every block is built as ``Block(channels, *, options...)`` and maps
(B, C, H, W) -> (B, C, H, W). ``create_attention("lga", 96, num_heads=6)``; a block from
outside lga, by its import path: ``create_external(96, target="mypkg.blocks.MyBlock")``.
"""

from . import cbam, coord, eca, identity, mhsa, se, shuffle  # noqa: F401  (modules register their blocks)
from .external import create_external
from .lga import LocalGlobalAttention
from .lga_base import LocalGlobalAttentionBase
from .lga_reference import LocalGlobalAttentionReference
from .registry import (
    ATTENTIONS,
    attention_options,
    create_attention,
    get_attention_class,
    list_attentions,
    preset_options,
    register_attention_preset,
)

__all__ = [
    "LocalGlobalAttention",
    "LocalGlobalAttentionBase",
    "LocalGlobalAttentionReference",
    "attention_options",
    "create_attention",
    "create_external",
    "get_attention_class",
    "list_attentions",
    "preset_options",
    "ATTENTIONS",
    "register_attention_preset",
]
