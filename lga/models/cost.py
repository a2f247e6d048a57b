"""Model cost: parameters and FLOPs, the LGA paper's table columns."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass (2 per multiply-add, as Ultralytics' GFLOPs), in eval mode.

    Counts convolutions and matrix products, which dominate; element-wise ops are not counted.
    """
    was_training = model.training
    model.eval()
    try:
        param = next(model.parameters(), None)
        x = torch.zeros(*input_shape, device=param.device if param is not None else "cpu")
        with FlopCounterMode(display=False) as counter:
            model(x)
        return counter.get_total_flops()
    finally:
        model.train(was_training)
