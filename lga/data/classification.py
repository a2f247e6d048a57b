"""Image-classification data held in memory as uint8 tensors (MNIST, Fashion-MNIST, ...)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence
from urllib.parse import urlparse

import lightning as L
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler, TensorDataset

from ..utils import reachable
from .idx import DatasetFileError, check_finite, check_labels, read_idx
from .registry import DATASETS

RESIZE_MODES = ("pad", "resize")
# training-time augmentation (dataset.augment): none, or pad-and-crop plus a horizontal flip (pad_crop_flip)
AUGMENTATIONS = ("none", "pad_crop_flip")


def _online(url: str) -> bool:
    parsed = urlparse(url)
    return reachable(parsed.hostname, parsed.port or (443 if parsed.scheme == "https" else 80))


class SeededShuffleSampler(Sampler[int]):
    """A random order fixed by ``reseed(seed)``, which :class:`lga.train.EpochSeed` calls at
    every epoch start: the order then does not depend on what consumed random numbers
    before, so a run resumed from a checkpoint sees the batches an uninterrupted one does."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size, self.seed = size, seed

    def reseed(self, seed: int) -> None:
        self.seed = seed

    def __iter__(self):
        return iter(torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed)).tolist())

    def __len__(self) -> int:
        return self.size


def training_loader(
    dataset: Dataset, batch_size: int, collate_fn: Callable | None = None, **options: Any
) -> DataLoader:
    """Shuffled by a :class:`SeededShuffleSampler`, full batches only; ``options`` go to the DataLoader."""
    # a private generator: creating the iterator then draws nothing from the global RNG
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=SeededShuffleSampler(len(dataset)),
        drop_last=True,
        collate_fn=collate_fn,
        generator=torch.Generator(),
        **options,
    )


@DATASETS.register("idx_classification")
class IDXClassificationDataModule(L.LightningDataModule):
    """Train / validation / test splits from four IDX files, kept in memory as uint8.

    The files are looked for in ``search_dirs`` in order, each name as given or with
    ``.gz``. Missing everywhere: with ``download`` (a torchvision dataset class name)
    and a reachable mirror they are downloaded into ``download_root``; otherwise the
    error lists the files, the folders searched, and ``hint``.

    Batches leave the loader as uint8 and are normalised (and padded or resized to
    ``image_size``) after transfer to the device, so the CPU loader stays cheap.

    Args:
        name: shown in messages and logs.
        search_dirs: folders to look in, in order.
        train_files, test_files: (images, labels) file names.
        num_classes: number of labels.
        image_size: side the model sees; ``resize_mode`` ``pad`` (centre zero-pad,
            no resampling) or ``resize`` (bilinear).
        val_size: training images held out for validation (fixed by ``split_seed``):
            below 1 a fraction of the training set, from 1 up a count.
        mean, std: normalisation of [0, 1] pixels.
    """

    task = "classification"

    def __init__(
        self,
        *,
        name: str,
        search_dirs: Sequence[str],
        train_files: Sequence[str],
        test_files: Sequence[str],
        num_classes: int = 10,
        image_size: int = 32,
        resize_mode: str = "pad",
        augment: str = "none",
        val_size: float = 0.1,
        split_seed: int = 0,
        batch_size: int = 128,
        eval_batch_size: int = 500,
        mean: float = 0.5,
        std: float = 0.5,
        download: str | None = None,
        download_root: str | None = None,
        download_url: str | None = None,
        hint: str = "",
    ) -> None:
        super().__init__()
        if resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {', '.join(RESIZE_MODES)}, got {resize_mode!r}")
        if augment not in AUGMENTATIONS:
            raise ValueError(f"augment must be one of {', '.join(AUGMENTATIONS)}, got {augment!r}")
        self.name, self.search_dirs = name, [Path(d) for d in search_dirs]
        self.train_files, self.test_files = list(train_files), list(test_files)
        self.num_classes, self.image_size, self.resize_mode = num_classes, image_size, resize_mode
        self.augment = augment
        self.val_size, self.split_seed = val_size, split_seed
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size
        self.mean, self.std = mean, std
        self.download, self.download_root, self.download_url, self.hint = download, download_root, download_url, hint
        self.in_chans = 1
        self.data: dict[str, TensorDataset] = {}

    # -- locating files -------------------------------------------------------------
    def _find(self, name: str) -> Path | None:
        for folder in self.search_dirs:
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.is_file():
                    return candidate
        return None

    def resolve_files(self) -> dict[str, Path]:
        names = self.train_files + self.test_files
        found = {n: self._find(n) for n in names}
        if all(found.values()):
            return found
        if self.download and self.download_root:
            if self.download_url and not _online(self.download_url):
                reason = f"offline ({self.download_url} unreachable)"
            else:
                self._download()
                found = {n: self._find(n) for n in names}
                if all(found.values()):
                    return found
                reason = "the download did not produce them"
        else:
            reason = "no download source for this dataset"
        missing = [n for n, p in found.items() if p is None]
        raise DatasetFileError(
            f"dataset {self.name!r}: missing {', '.join(missing)} (each may also end in .gz); "
            f"looked in {', '.join(str(d) for d in self.search_dirs)}; {reason}. "
            f"Put the files in {self.search_dirs[0]}. {self.hint}".strip()
        )

    def _download(self) -> None:
        import torchvision.datasets

        cls = getattr(torchvision.datasets, self.download)
        for train in (True, False):
            cls(self.download_root, train=train, download=True)

    # -- LightningDataModule ------------------------------------------------------------
    def prepare_data(self) -> None:
        self.resolve_files()

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        files = self.resolve_files()
        images, labels = (read_idx(files[n]) for n in self.train_files)
        test_images, test_labels = (read_idx(files[n]) for n in self.test_files)
        splits = {"train": (images, labels, self.train_files), "test": (test_images, test_labels, self.test_files)}
        for split, (x, y, (image_file, label_file)) in splits.items():
            if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
                raise DatasetFileError(
                    f"dataset {self.name!r} {split}: {files[image_file]} holds images {tuple(x.shape)} but "
                    f"{files[label_file]} labels {tuple(y.shape)}; they must hold one label per image: "
                    "replace the file that is wrong"
                )
            # both splits checked now: a bad test label would otherwise surface only after training
            check_finite(x, files[image_file])
            check_labels(y, self.num_classes, files[label_file])
        n_val = round(self.val_size * len(images)) if self.val_size < 1 else int(self.val_size)
        if not 0 < n_val < len(images):
            raise ValueError(
                f"val_size={self.val_size} leaves no training or no validation images out of {len(images)}"
            )
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(self.split_seed))
        val_idx, train_idx = order[:n_val], order[n_val:]
        images, test_images = images.unsqueeze(1), test_images.unsqueeze(1)
        labels, test_labels = labels.long(), test_labels.long()
        self.data = {
            "train": TensorDataset(images[train_idx], labels[train_idx]),
            "val": TensorDataset(images[val_idx], labels[val_idx]),
            "test": TensorDataset(test_images, test_labels),
        }

    def train_dataloader(self) -> DataLoader:
        return training_loader(self.data["train"], self.batch_size)

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.data["val"], batch_size=self.eval_batch_size)

    def test_dataloader(self) -> DataLoader:
        return DataLoader(self.data["test"], batch_size=self.eval_batch_size)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, 1, h, w) -> normalised float (B, 1, image_size, image_size)."""
        x = (images.float() / 255.0 - self.mean) / self.std
        h, w = x.shape[-2:]
        if (h, w) == (self.image_size, self.image_size):
            return x
        if self.resize_mode == "resize":
            return F.interpolate(x, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False)
        top, left = (self.image_size - h) // 2, (self.image_size - w) // 2
        pad_value = (0.0 - self.mean) / self.std  # pad with the background (black) colour
        return F.pad(x, (left, self.image_size - w - left, top, self.image_size - h - top), value=pad_value)

    def on_after_batch_transfer(self, batch, dataloader_idx: int):
        images, labels = batch
        x = self.preprocess(images)
        if self.augment == "pad_crop_flip" and self.trainer is not None and self.trainer.training:
            x = pad_crop_flip(x, pad_value=(0.0 - self.mean) / self.std)
        return x, labels


def pad_crop_flip(x: torch.Tensor, pad_value: float, pad: int = 4) -> torch.Tensor:
    """The usual (Fashion-)MNIST / CIFAR training augmentation, per image: pad by ``pad`` pixels of the
    background, crop back at a random offset, mirror left-right with probability 1/2. Draws from torch's
    global generator on ``x``'s device, which lga reseeds from (seed, step) every epoch: resumable."""
    b, _, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), value=pad_value)
    offsets = torch.randint(0, 2 * pad + 1, (2, b), device=x.device)
    flips = torch.rand(b, device=x.device) < 0.5
    rows = (offsets[0][:, None] + torch.arange(h, device=x.device)[None, :])[:, None, :, None]
    cols = offsets[1][:, None] + torch.arange(w, device=x.device)[None, :]
    cols = torch.where(flips[:, None], cols.flip(1), cols)[:, None, None, :]
    batch = torch.arange(b, device=x.device)[:, None, None, None]
    channels = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return padded[batch, channels, rows, cols]
