"""Local-Global Attention: the parameters and options every LGA implementation shares.

Shao, "Local-Global Attention: An Adaptive Mechanism for Multi-Scale Feature
Integration", arXiv:2411.09604 (2024). ``lga_reference.py`` computes the block step
by step (the test oracle), ``lga.py`` computes the same function fast; both build
their parameters here, so one state_dict loads into either.

The paper's text and its released code compute different attention products
(``product``):

- ``paper``: ``softmax(Q K^T * s) V``, as the text describes;
- ``released``: what the released module computes. Its einsum names the key index and
  the value's channel index differently, so it sums both on their own: every channel
  of a head outputs the sum of that head's value channels. Query, key, softmax and
  the scale have no effect, and the q/k rows of each qkv conv get zero gradient.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

BRANCHES = ("local", "global", "both")
FUSIONS = ("scalar", "softmax")
PRODUCTS = ("paper", "released")


def _check_kernel(name: str, k: int) -> None:
    if not isinstance(k, int) or k <= 0 or k % 2 == 0:
        raise ValueError(f"{name} must be a positive odd integer, got {k!r}")


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
        pos_init_std: standard deviation of the table's normal initialisation
            (the released module: 1.0).
        fusion: ``scalar`` (two free scalars, as published) or ``softmax`` (normalised).
        branches: ``local`` (LA), ``global`` (GA) or ``both`` (LGA). LA and GA have
            no parameters of the other branch, its alpha included (as released).
        product: ``paper`` (``A V``) or ``released`` (per-head sum of V; see module docstring).
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
        pos_init_std: float = 0.02,
        fusion: str = "scalar",
        branches: str = "both",
        product: str = "paper",
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
        for option, value, valid in (
            ("branches", branches, BRANCHES),
            ("fusion", fusion, FUSIONS),
            ("product", product, PRODUCTS),
        ):
            if value not in valid:
                raise ValueError(f"{option} must be one of {', '.join(valid)}, got {value!r}")
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
        if not pos_init_std >= 0:
            raise ValueError(f"pos_init_std must be >= 0, got {pos_init_std!r}")

        self.channels, self.dim, self.num_heads = channels, dim, num_heads
        self.head_dim = dim // num_heads
        self.logit_scale = self.head_dim**-0.5  # the published quirk: head channels, not H*W
        self.local_kernel_sizes = local_kernel_sizes if branches != "global" else ()
        self.global_kernel_size = global_kernel_size
        self.num_scales, self.fusion, self.branches, self.product = num_scales, fusion, branches, product

        self.proj_in = nn.Conv2d(channels, dim, 1) if embed_dim is not None else None
        self.multi_scale = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(dim, dim, 3, stride=2**i, padding=1, groups=dim),
                nn.Conv2d(dim, dim, 1),
            )
            for i in range(num_scales)
        )
        self.scale_weight = nn.Conv2d(dim, num_scales + 1, 1) if num_scales else None
        self.pos_embed = nn.Parameter(torch.randn(1, dim, pos_size, pos_size) * pos_init_std) if pos_embed else None
        self.local_dw = nn.ModuleList(
            nn.Conv2d(dim, dim, k, padding=k // 2, groups=dim) for k in self.local_kernel_sizes
        )
        self.local_qkv = nn.ModuleList(nn.Conv2d(dim, 3 * dim, 1, groups=num_heads) for _ in self.local_kernel_sizes)
        # a branch's alpha exists only with the branch: an unused parameter would get no
        # gradient and break DDP with find_unused_parameters=False
        self.a_local = nn.Parameter(torch.tensor(0.5)) if branches != "global" else None
        if branches != "local":
            self.global_dw = nn.Conv2d(dim, dim, global_kernel_size, padding=global_kernel_size // 2, groups=dim)
            self.global_qkv = nn.Conv2d(dim, 3 * dim, 1, groups=num_heads)
            self.a_global = nn.Parameter(torch.tensor(0.5))
        else:
            self.global_dw = self.global_qkv = self.a_global = None
        self.out_proj = nn.Conv2d(dim, channels, 1)

    def fusion_weights(self) -> dict[str, torch.Tensor]:
        """``{"local": a_local, "global": a_global}`` for the branches present, as the
        forward uses them (after a softmax over the present branches with ``fusion=softmax``)."""
        alphas = {name: a for name, a in (("local", self.a_local), ("global", self.a_global)) if a is not None}
        if self.fusion == "softmax":
            return dict(zip(alphas, torch.softmax(torch.stack(list(alphas.values())), 0)))
        return alphas

    def scale_weights(self, x: torch.Tensor) -> torch.Tensor:
        """Per-pixel softmax weights over the S+1 scale maps, (B, S+1, H, W)."""
        if self.proj_in is not None:
            x = self.proj_in(x)
        return torch.softmax(self.scale_weight(x), dim=1)

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, dim={self.dim}, heads={self.num_heads}, "
            f"local={self.local_kernel_sizes}, global={self.global_kernel_size}, "
            f"scales={self.num_scales}, branches={self.branches}, fusion={self.fusion}, product={self.product}"
        )
