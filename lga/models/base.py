"""What every task's LightningModule shares: optimizer and schedule from config, cost logs,
and what it takes from the data."""

from __future__ import annotations

from typing import Any, Callable, Optional

import lightning as L
import torch
from torch.optim import Optimizer
from torchmetrics import SumMetric

from ..registry import Registry

# task -> its LightningModule; the run adds the backbone, the optimiser, the schedule, and what the data
# decides (each class's ``data_options_names``)
MODELS = Registry("model", partial=True, filled=("backbone", "optimizer", "scheduler"), convert=True)


class TaskModule(L.LightningModule):
    """Base of lga's LightningModules; a new task is a subclass registered with
    ``@MODELS.register("<task>")`` (and a yaml in ``conf/model``).

    Subclasses set ``task`` (matched against the datamodule's ``task``), ``monitor`` (the
    validation metric, higher is better, that picks the best checkpoint) and
    ``self.cost`` (``{"params", "flops"}``); they take ``(backbone, num_classes, *, own
    options..., **kwargs)`` and pass ``kwargs`` on here. :meth:`data_options` says what
    the datamodule decides (``num_classes``, ``input_shape``, ...); the rest comes from
    ``conf/model`` as a Hydra partial.

    Args:
        optimizer: ``params -> Optimizer`` (a Hydra ``_partial_``).
        scheduler: ``(optimizer, total_steps=) -> LRScheduler`` stepped every batch, or None.
        input_shape: (C, H, W) of the model's input, to count FLOPs.
    """

    task: str
    monitor: str
    cost: dict[str, int]
    data_options_names: tuple[str, ...] = ("num_classes", "input_shape")

    def __init__(
        self,
        *,
        optimizer: Callable[..., Optimizer],
        scheduler: Optional[Callable[..., torch.optim.lr_scheduler.LRScheduler]] = None,
        input_shape: tuple[int, int, int] = (1, 32, 32),
    ) -> None:
        super().__init__()
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.input_shape = tuple(input_shape)
        self.test_images = SumMetric()  # how many test images the test metrics cover (summed over processes)

    @classmethod
    def data_options(cls, datamodule: Any) -> dict[str, Any]:
        """The constructor arguments the data decides (named in ``data_options_names``)."""
        return {
            "num_classes": datamodule.num_classes,
            "input_shape": (datamodule.in_chans, datamodule.image_size, datamodule.image_size),
        }

    def count_test_images(self, count: int) -> None:
        """Call from ``test_step``: logs ``test/images``, so a partial test set is visible as such."""
        self.test_images.update(count)
        self.log("test/images", self.test_images, on_step=False, on_epoch=True, reduce_fx="sum")

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
