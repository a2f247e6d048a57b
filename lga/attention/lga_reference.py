"""Local-Global Attention: shared parameters and the faithful reference forward.

Shao, "Local-Global Attention: An Adaptive Mechanism for Multi-Scale Feature
Integration", arXiv:2411.09604 (2024). The reference forward reproduces the
published module (an Ultralytics YOLOv8 fork) step by step, quirks included; it is
the oracle the fast implementation in ``lga.py`` is tested against. Both classes
share this parameter layout, so one state_dict loads into either.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .registry import register_attention

BRANCHES = ("local", "global", "both")
FUSIONS = ("scalar", "softmax")


def _check_kernel(name: str, k: int) -> None:
    if not isinstance(k, int) or k <= 0 or k % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {k!r}")


def channel_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float) -> torch.Tensor:
    """softmax(q k^T * scale) v over the last dim: (..., d, N) -> (..., d, N).

    The ``d x d`` attention matrix mixes channels of a head; positions N are summed,
    so the cost is linear in N.
    """
    attn = torch.softmax(q @ k.transpose(-2, -1) * scale, dim=-1)
    return attn @ v


class LocalGlobalAttentionBase(nn.Module):
    """Parameters and options of Local-Global Attention (see module docstring).

    Args:
        channels: C, channels of the input and output map.
        num_heads: attention heads; must divide the block width. ``None``: 6 (the
            paper's) when 6 divides the width, else the largest divisor up to 8.
        local_kernel_sizes: depthwise kernels of the local branches (odd).
        global_kernel_size: depthwise kernel of the global branch (odd).
        num_scales: S, extra multi-scale views (strides 1, 2, ..., 2**(S-1)).
        pos_embed: add the learnable positional table.
        pos_size: side of the positional table (resized by nearest neighbour).
        fusion: ``scalar`` (two free scalars, as published) or ``softmax`` (normalised).
        branches: ``local`` (LA), ``global`` (GA) or ``both`` (LGA).
        embed_dim: width the block works at; ``None`` keeps ``channels`` (as published).
            Otherwise a 1x1 conv projects C -> embed_dim first and the output conv
            maps back to C, which makes the block cheap on wide maps.

    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def __init__(
        self,
        channels: int,
        *,
        num_heads: int | None = None,
        local_kernel_sizes: Sequence[int] = (3, 5, 7),
        global_kernel_size: int = 11,
        num_scales: int = 3,
        pos_embed: bool = True,
        pos_size: int = 14,
        fusion: str = "scalar",
        branches: str = "both",
        embed_dim: int | None = None,
    ) -> None:
        super().__init__()
        dim = channels if embed_dim is None else embed_dim
        if not isinstance(channels, int) or channels <= 0:
            raise ValueError(f"channels must be a positive integer, got {channels!r}")
        if not isinstance(dim, int) or dim <= 0:
            raise ValueError(f"embed_dim must be a positive integer, got {embed_dim!r}")
        if num_heads is None:
            num_heads = 6 if dim % 6 == 0 else max(h for h in range(1, 9) if dim % h == 0)
        if not isinstance(num_heads, int) or num_heads <= 0:
            raise ValueError(f"num_heads must be a positive integer, got {num_heads!r}")
        if dim % num_heads:
            raise ValueError(
                f"num_heads={num_heads} does not divide the block width {dim} "
                f"(channels={channels}, embed_dim={embed_dim}); pick heads that divide it"
            )
        local_kernel_sizes = tuple(local_kernel_sizes)
        if branches not in BRANCHES:
            raise ValueError(f"branches must be one of {', '.join(BRANCHES)}, got {branches!r}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {', '.join(FUSIONS)}, got {fusion!r}")
        if branches != "global":
            if not local_kernel_sizes:
                raise ValueError("local_kernel_sizes is empty; give at least one odd kernel size")
            for k in local_kernel_sizes:
                _check_kernel("local_kernel_sizes entries", k)
        _check_kernel("global_kernel_size", global_kernel_size)
        if not isinstance(num_scales, int) or num_scales < 0:
            raise ValueError(f"num_scales must be a non-negative integer, got {num_scales!r}")
        if not isinstance(pos_size, int) or pos_size <= 0:
            raise ValueError(f"pos_size must be a positive integer, got {pos_size!r}")

        self.channels, self.dim, self.num_heads = channels, dim, num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim**-0.5  # the published quirk: head channels, not H*W
        self.local_kernel_sizes = local_kernel_sizes if branches != "global" else ()
        self.global_kernel_size = global_kernel_size
        self.num_scales, self.fusion, self.branches = num_scales, fusion, branches

        self.proj_in = nn.Conv2d(channels, dim, 1) if embed_dim is not None else None
        self.multi_scale = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, dim, 3, stride=2**i, padding=1, groups=dim),
                nn.Conv2d(dim, dim, 1),
            )
            for i in range(num_scales)
        )
        self.scale_weight = nn.Conv2d(dim, num_scales + 1, 1) if num_scales else None
        self.pos_embed = nn.Parameter(torch.randn(1, dim, pos_size, pos_size) * 0.02) if pos_embed else None
        self.local_dw = nn.ModuleList(
            nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim) for k in self.local_kernel_sizes
        )
        self.local_qkv = nn.ModuleList(
            nn.Conv2d(dim, 3 * dim, 1, groups=num_heads) for _ in self.local_kernel_sizes
        )
        if branches != "local":
            self.global_dw = nn.Conv2d(dim, dim, global_kernel_size, padding=global_kernel_size // 2, groups=dim)
            self.global_qkv = nn.Conv2d(dim, 3 * dim, 1, groups=num_heads)
        else:
            self.global_dw = self.global_qkv = None
        self.a_local = nn.Parameter(torch.tensor(0.5))
        self.a_global = nn.Parameter(torch.tensor(0.5))
        self.out_proj = nn.Conv2d(dim, channels, 1)

    def fusion_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(a_local, a_global) as used in the forward (after softmax, if enabled)."""
        if self.fusion == "softmax":
            w = torch.softmax(torch.stack([self.a_local, self.a_global]), 0)
            return w[0], w[1]
        return self.a_local, self.a_global

    def scale_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel softmax weights over the S+1 scale maps, (B, S+1, H, W)."""
        if self.proj_in is not None:
            x = self.proj_in(x)
        return torch.softmax(self.scale_weight(x), dim=1)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, dim={self.dim}, heads={self.num_heads}, "
            f"local={self.local_kernel_sizes}, global={self.global_kernel_size}, "
            f"scales={self.num_scales}, branches={self.branches}, fusion={self.fusion}"
        )


@register_attention("lga_reference")
class LocalGlobalAttentionReference(LocalGlobalAttentionBase):
    """Local-Global Attention, computed exactly as the published module does.

    Readable and slow; use :class:`lga.attention.LocalGlobalAttention` for training.
    Shape: (B, C, H, W) -> (B, C, H, W).
    """

    def _attend(self, y: torch.Tensor, dw: nn.Conv2d, qkv: nn.Conv2d) -> torch.Tensor:
        b, c, h, w = y.shape
        q, k, v = qkv(dw(y)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.num_heads, self.head_dim, h * w) for t in (q, k, v))
        return channel_attention(q, k, v, self.scale).reshape(b, c, h, w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.proj_in is not None:
            x = self.proj_in(x)
        size = x.shape[-2:]

        # 1-2. multi-scale views, weighted per pixel by a softmax over scales
        maps = [x] + [F.interpolate(view(x), size=size, mode="nearest") + x for view in self.multi_scale]
        if self.scale_weight is not None:
            weights = torch.softmax(self.scale_weight(x), dim=1)
            y = sum(weights[:, i : i + 1] * m for i, m in enumerate(maps))
        else:
            y = x

        # 3. positional table, resized to the map
        if self.pos_embed is not None:
            y = y + F.interpolate(self.pos_embed, size=size, mode="nearest")

        # 4-6. local and global channel attention, each adding the raw input back
        a_local, a_global = self.fusion_weights()
        out = 0
        if self.local_dw:
            local = [self._attend(y, dw, qkv) + x for dw, qkv in zip(self.local_dw, self.local_qkv)]
            out = out + a_local * (sum(local) / len(local))
        if self.global_dw is not None:
            out = out + a_global * (self._attend(y, self.global_dw, self.global_qkv) + x)
        return self.out_proj(out)
