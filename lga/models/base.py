"""What every task's LightningModule shares: optimizer and schedule from config, cost logs."""

from __future__ import annotations

from typing import Callable, Optional

import lightning as L
import torch
from torch.optim import Optimizer
from torchmetrics import SumMetric

from ..attention import LocalGlobalAttentionBase


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
        self.test_images = SumMetric()  # how many test images the test metrics cover (summed over processes)

    def count_test_images(self, count: int) -> None:
        """Call from ``test_step``: logs ``test/images``, so a partial test set is visible as such."""
        self.test_images.update(count)
        self.log("test/images", self.test_images, on_step=False, on_epoch=True, reduce_fx="sum")

    def track_lga_blocks(self) -> None:
        """Find the model's LGA blocks and record their mean scale weights during validation
        (call at the end of ``__init__``); :meth:`log_lga_blocks` logs them."""
        self.lga_blocks = {name: m for name, m in self.named_modules() if isinstance(m, LocalGlobalAttentionBase)}
        self._scale_means: dict[str, list[torch.Tensor]] = {}
        for name, block in self.lga_blocks.items():
            if block.scale_weight is not None:
                block.register_forward_pre_hook(
                    lambda mod, args, name=name: self._record_scale_weights(name, mod, args[0])
                )

    def _record_scale_weights(self, name: str, block: LocalGlobalAttentionBase, x: torch.Tensor) -> None:
        trainer = self._trainer
        if trainer is not None and trainer.validating and not trainer.sanity_checking:
            with torch.no_grad():
                self._scale_means.setdefault(name, []).append(block.scale_weights(x).mean((0, 2, 3)))

    def log_lga_blocks(self) -> None:
        """Log each LGA block's fusion weights (a_local, a_global) and mean scale weights."""
        for name, block in self.lga_blocks.items():
            prefix = f"lga/{name.replace('.', '/')}"
            # sync_dist: under DDP each process saw different batches (the scale weights differ)
            for branch, alpha in block.fusion_weights().items():
                self.log(f"{prefix}/a_{branch}", alpha.detach(), sync_dist=True)
            if self._scale_means.get(name):
                for i, w in enumerate(torch.stack(self._scale_means.pop(name)).mean(0)):
                    self.log(f"{prefix}/scale_w{i}", w, sync_dist=True)

    def on_fit_start(self) -> None:
        for logger in self.loggers:
            logger.log_metrics(
                {"model/params_M": self.cost["params"] / 1e6, "model/gflops": self.cost["flops"] / 1e9}, step=0
            )

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.parameters())
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, total_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}
