"""Optimisers and learning-rate schedules: the registries of ``conf/optimizer`` and ``conf/scheduler``.
A schedule is built once the number of optimiser steps is known."""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from ..registry import Registry

# torch's optimisers; the model adds its parameters
OPTIMIZERS = Registry("optimizer", partial=True, filled=("params",))
for _optimizer in (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW):
    OPTIMIZERS.register(_optimizer.__name__.lower(), _optimizer)

# the model adds the optimiser and the number of steps once training starts
SCHEDULERS = Registry("scheduler", partial=True, filled=("optimizer", "total_steps"))


@SCHEDULERS.register("warmup_cosine")
def warmup_cosine(
    optimizer: Optimizer, *, total_steps: int, warmup_fraction: float = 0.05, min_lr_ratio: float = 0.01
) -> LambdaLR:
    """Linear warm-up over ``warmup_fraction`` of the steps, then cosine decay to ``min_lr_ratio``."""
    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


@SCHEDULERS.register("constant")
def constant(optimizer: Optimizer, *, total_steps: int) -> LambdaLR:
    """No schedule: the optimiser's learning rate throughout."""
    return LambdaLR(optimizer, lambda step: 1.0)
