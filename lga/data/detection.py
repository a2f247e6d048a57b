"""What every detection dataset provides: samples of (image, boxes, labels), loaders, batches.

A sample's image is uint8 (C, H, W), in memory or decoded from a file on access; its
target is ``{"boxes": float (N, 4) xyxy in pixels, "labels": int64 (N,) from 0}``, the
format torchvision's detectors take. Batches are tuples of lists (images may differ in
size); the detector resizes and normalises them.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision.io import ImageReadMode, decode_image

from ..utils import LGAError
from .classification import training_loader

SPLITS = ("train", "val", "test")


class AnnotationError(LGAError):
    """A broken annotation file; the message names the file and the line or entry."""


@dataclass
class AnnotatedImage:
    """One image on disk with its boxes (xyxy pixels) and labels (class indices from 0)."""

    path: Path
    boxes: torch.Tensor
    labels: torch.Tensor


def check_box(box: Sequence[float], width: int, height: int, where: str, tolerance: float = 1.0) -> list[float]:
    """A box inside its image (within ``tolerance`` pixels, then clipped), with positive size."""
    x0, y0, x1, y1 = box
    if not all(math.isfinite(v) for v in box):  # NaN compares false with every bound below
        raise AnnotationError(f"{where}: box {list(box)} has a NaN or infinite coordinate")
    if x1 <= x0 or y1 <= y0:
        raise AnnotationError(f"{where}: empty box {[x0, y0, x1, y1]} (x1 <= x0 or y1 <= y0)")
    if x0 < -tolerance or y0 < -tolerance or x1 > width + tolerance or y1 > height + tolerance:
        raise AnnotationError(f"{where}: box {[x0, y0, x1, y1]} lies outside the {width}x{height} image")
    return [max(0.0, x0), max(0.0, y0), min(float(width), x1), min(float(height), y1)]


def target(boxes: list[list[float]], labels: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), torch.tensor(labels, dtype=torch.int64)


class DetectionDataset(Dataset):
    """Samples in memory (``images`` uint8 (N, C, H, W) and per-image targets) or on disk
    (``records``, decoded to ``in_chans`` channels on access)."""

    def __init__(
        self,
        *,
        images: torch.Tensor | None = None,
        targets: list[dict[str, torch.Tensor]] | None = None,
        records: list[AnnotatedImage] | None = None,
        in_chans: int = 3,
    ) -> None:
        self.images, self.targets, self.records, self.in_chans = images, targets, records, in_chans

    def __len__(self) -> int:
        return len(self.records) if self.records is not None else len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if self.records is None:
            return self.images[index], self.targets[index]
        record = self.records[index]
        mode = ImageReadMode.GRAY if self.in_chans == 1 else ImageReadMode.RGB
        try:
            image = decode_image(str(record.path), mode=mode)
        except (RuntimeError, OSError) as err:
            raise AnnotationError(f"cannot read image {record.path}: {err}") from None
        return image, {"boxes": record.boxes, "labels": record.labels}


def collate(batch):
    images, targets = zip(*batch)
    return list(images), list(targets)


IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class DetectionDataModule(L.LightningDataModule):
    """Base of detection datasets: subclasses set ``class_names`` and either implement
    ``read_split`` (datasets on disk) or override ``setup`` to fill ``self.data``
    (split -> DetectionDataset).

    Args:
        name: shown in logs and the summary.
        image_size: the detector resizes images so their longer side is at most this.
        in_chans: 1 (images decoded as grayscale) or 3.
        mean, std: per channel, of [0, 1] pixels (default: ImageNet's for 3 channels).
        batch_size, eval_batch_size: images per training / evaluation batch.
        num_workers: loader processes that read and decode images (0: the main process).
    """

    task = "detection"
    class_names: list[str]

    def __init__(
        self,
        *,
        name: str,
        image_size: int,
        in_chans: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        batch_size: int = 8,
        eval_batch_size: int = 16,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        if in_chans not in (1, 3):
            raise ValueError(f"in_chans must be 1 or 3, got {in_chans}")
        self.name, self.image_size, self.in_chans = name, image_size, in_chans
        self.mean = list(mean) if mean is not None else list(IMAGENET_MEAN if in_chans == 3 else (0.5,))
        self.std = list(std) if std is not None else list(IMAGENET_STD if in_chans == 3 else (0.25,))
        if len(self.mean) != in_chans or len(self.std) != in_chans:
            raise ValueError(f"mean and std need {in_chans} values (one per channel), got {self.mean} and {self.std}")
        self.batch_size, self.eval_batch_size, self.num_workers = batch_size, eval_batch_size, num_workers
        self.data: dict[str, DetectionDataset] = {}

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def read_split(self, split: str) -> tuple[list[AnnotatedImage], str]:
        """The split's annotated images, and where they come from (for messages)."""
        raise NotImplementedError(f"{type(self).__name__} must implement read_split or override setup")

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        for split in SPLITS:
            records, source = self.read_split(split)
            self.data[split] = DetectionDataset(records=drop_unreadable(records, source), in_chans=self.in_chans)

    def _workers(self) -> dict[str, Any]:
        return {"num_workers": self.num_workers, "persistent_workers": self.num_workers > 0}

    def train_dataloader(self) -> DataLoader:
        return training_loader(self.data["train"], self.batch_size, collate_fn=collate, **self._workers())

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.data["val"], batch_size=self.eval_batch_size, collate_fn=collate, **self._workers())

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.data["test"], batch_size=self.eval_batch_size, collate_fn=collate, **self._workers())


def drop_unreadable(records: list[AnnotatedImage], source: str) -> list[AnnotatedImage]:
    """Records whose image file exists; missing ones are skipped with one warning."""
    kept = [r for r in records if r.path.is_file()]
    if len(kept) < len(records):
        missing = [str(r.path) for r in records if not r.path.is_file()]
        warnings.warn(f"{source}: {len(missing)} image(s) not found and skipped, e.g. {missing[0]}", stacklevel=2)
    if not kept:
        raise AnnotationError(f"{source}: none of its {len(records)} images exist")
    return kept
