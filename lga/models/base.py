"""What every task's LightningModule shares: optimizer and schedule from config, cost logs."""

from __future__ import annotations

from typing import Callable, Optional

import lightning as L
import torch
from torch.optim import Optimizer


class TaskModule(L.LightningModule):
    """Base of lga's LightningModules.

    Subclasses set ``self.cost`` (``{"params", "flops"}``) and ``monitor`` (the
    validation metric, higher is better, that picks the best checkpoint).

    Args:
        optimizer: ``params -> Optimizer`` (a Hydra ``_partial_``).
        scheduler: ``(optimizer, total_steps=) -> LRScheduler`` stepped every batch, or None.
    """

    monitor: str
    cost: dict[str, int]

    def __init__(
        self,
        *,
        optimizer: Callable[..., Optimizer],
        scheduler: Optional[Callable[..., torch.optim.lr_scheduler.LRScheduler]] = None,
    ) -> None:
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_metrics({"model/params_M": self.cost["params"] / 1e6, "model/gflops": self.cost["flops"] / 1e9}, step=0)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
