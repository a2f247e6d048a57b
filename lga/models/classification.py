"""LightningModule for image classification on any backbone + attention."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics import MaxMetric, MeanMetric, MetricCollection
from torchmetrics.classification import MulticlassAccuracy

from .base import MODELS, TaskModule
from .cost import count_flops, count_params
from .heads import ClassificationHead

SPLITS = ("train", "val", "test")


@MODELS.register("classification")
class ClassificationModule(TaskModule):
    """Backbone -> (attention inside the backbone) -> classification head, cross-entropy.

    Logs ``{train,val,test}/{loss,top1,top5}`` (accuracy as a fraction), ``val/top1_best``
    and the model's parameters and GFLOPs once.

    Args:
        backbone: a :class:`lga.backbones.Backbone`.
        num_classes: outputs.
        head_channels, dropout: see :class:`lga.models.heads.ClassificationHead`.
        label_smoothing: of the cross-entropy.
        optimizer, scheduler, input_shape: see :class:`lga.models.TaskModule`.
    """

    task = "classification"
    monitor = "val/top1"

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        head_channels: int = 0,
        dropout: float = 0.0,
        label_smoothing: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters(ignore=["backbone", "optimizer", "scheduler"])
        self.backbone = backbone
        self.head = ClassificationHead(
            backbone.out_channels[-1], num_classes, hidden_channels=head_channels, dropout=dropout
        )
        top_k = min(5, num_classes)
        accuracy = lambda k: MulticlassAccuracy(num_classes, top_k=k, average="micro")  # noqa: E731
        self.metrics = nn.ModuleDict(
            {
                f"{split}_acc": MetricCollection({"top1": accuracy(1), f"top{top_k}": accuracy(top_k)})
                for split in SPLITS
            }
        )  # keys carry a suffix: a plain "train" would shadow Module.train
        self.losses = nn.ModuleDict({f"{split}_loss": MeanMetric() for split in SPLITS})
        self.val_top1_best = MaxMetric()
        self.val_top1_best.persistent(True)  # kept in checkpoints, so a resumed run knows its best
        self.cost = {"params": count_params(self), "flops": count_flops(self, (1, *self.input_shape))}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        *_, last = self.backbone(x).values()  # the coarsest map
        return self.head(last)

    def _step(self, batch, split: str) -> torch.Tensor:
        images, labels = batch
        logits = self(images)
        loss = F.cross_entropy(logits, labels, label_smoothing=self.hparams.label_smoothing)
        self.losses[f"{split}_loss"](loss)
        self.metrics[f"{split}_acc"].update(logits, labels)
        on_step = split == "train"
        self.log(f"{split}/loss", self.losses[f"{split}_loss"], on_step=on_step, on_epoch=True, prog_bar=True)
        for name, metric in self.metrics[f"{split}_acc"].items():
            self.log(f"{split}/{name}", metric, on_step=False, on_epoch=True, prog_bar=name == "top1")
        return loss

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        return self._step(batch, "train")

    def validation_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "val")

    def test_step(self, batch, batch_idx: int) -> None:
        self._step(batch, "test")
        self.count_test_images(len(batch[0]))

    # -- reporting ----------------------------------------------------------------------
    def on_validation_epoch_end(self) -> None:
        if self.trainer.sanity_checking:  # a few batches before training: not a result
            return
        self.val_top1_best(self.metrics["val_acc"]["top1"].compute())
        self.log("val/top1_best", self.val_top1_best.compute(), sync_dist=True)
