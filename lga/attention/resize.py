"""Nearest-neighbour resizing that exports to ONNX with PyTorch's numbers.

``F.interpolate(x, size, mode="nearest")`` takes source row ``floor(i * (in / out))`` (in float32).
Exported, it becomes an ONNX Resize, which onnxruntime computes as ``floor(i / (out / in))``: at
some ratios the two floors differ (14 -> 2 takes rows 0 and 7 in PyTorch, 0 and 6 in onnxruntime;
32 of the 1024 size pairs up to 32), and LGA resizes its 14 x 14 position table to exactly such
maps. While exporting, :func:`resize_nearest` gathers PyTorch's source indices instead, so the
graph holds a Gather with PyTorch's numbers; eager and compiled runs keep PyTorch's own kernel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def gather_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size=size, mode="nearest")`` as index gathers: the same numbers, NCHW."""
    for dim, out in zip((2, 3), size):
        n = x.shape[dim]
        if n != out:
            index = (torch.arange(out, device=x.device, dtype=torch.float32) * (n / out)).floor().long()
            x = x.index_select(dim, index.clamp_(max=n - 1))
    return x


def resize_nearest(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``F.interpolate(x, size=size, mode="nearest")``; :func:`gather_nearest` under ``torch.export``.

    Shape: (B, C, H, W) -> (B, C, *size).
    """
    if torch.compiler.is_exporting():
        return gather_nearest(x, size)
    return F.interpolate(x, size=size, mode="nearest")
