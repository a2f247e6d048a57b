"""``tiny_objects``: a synthetic small-object detection set made from MNIST-style items.

The LGA paper's headline is small-object detection (TinyPerson, VisDrone), data that
cannot be downloaded offline. This set is made deterministically from the digits shipped
with lga (or Fashion-MNIST items): 10 classes, several to a few dozen objects per canvas,
sizes drawn log-uniformly (at the default 8-32 px every object is small in COCO's sense,
under 32x32), some overlap, unlabelled clutter (cut pieces of other items) and background noise.

Train canvases use the training digits, validation canvases the held-out training
digits, test canvases the official test digits: no item appears in two splits.
"""

from __future__ import annotations

import math
import random
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torchvision.ops import box_iou

from .classification import IDXClassificationDataModule
from .detection import SPLITS, DetectionDataModule, DetectionDataset, target
from .registry import DATASETS

DIGIT_NAMES = [str(d) for d in range(10)]


def _tight_box(patch: torch.Tensor, threshold: float) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the pixels above ``threshold`` in a (h, w) patch."""
    rows, cols = (patch > threshold).any(1).nonzero(), (patch > threshold).any(0).nonzero()
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _resize(item: torch.Tensor, height: int, width: int) -> torch.Tensor:
    return F.interpolate(item[None, None].float(), size=(height, width), mode="bilinear", antialias=True)[0, 0]


def check_options(image_size: int, object_size: Sequence[int], objects_per_image: Sequence[int]) -> None:
    if len(object_size) != 2 or not 1 <= object_size[0] <= object_size[1] <= image_size:
        raise ValueError(
            f"object_size must be [min, max] with 1 <= min <= max <= image_size={image_size}, got {list(object_size)}"
        )
    if len(objects_per_image) != 2 or not 0 <= objects_per_image[0] <= objects_per_image[1]:
        raise ValueError(f"objects_per_image must be [min, max] with 0 <= min <= max, got {list(objects_per_image)}")


DEFAULT_OBJECT_SIZE, DEFAULT_OBJECTS = (8, 32), (3, 30)
# generate()'s options that shape the canvases (the data module adds the size and a seed per split)
CANVAS_OPTIONS = ("object_size", "objects_per_image", "clutter", "max_overlap", "noise")


def generate(
    items: torch.Tensor,
    labels: torch.Tensor,
    count: int,
    *,
    image_size: int = 256,
    object_size: Sequence[int] = DEFAULT_OBJECT_SIZE,
    objects_per_image: Sequence[int] = DEFAULT_OBJECTS,
    clutter: int = 8,
    max_overlap: float = 0.3,
    noise: float = 12.0,
    seed: int = 0,
) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
    """``count`` canvases (uint8 (count, 1, S, S)) and their targets, from ``items`` (uint8
    (N, h, w)) with ``labels`` (N,). The same arguments always give the same output.

    Each canvas gets a number of objects drawn uniformly from ``objects_per_image``, each
    an item scaled to a side drawn log-uniformly from ``object_size`` and placed where its
    box overlaps no earlier box by more than ``max_overlap`` IoU (up to 20 tries, then
    dropped); up to ``clutter`` unlabelled cut pieces of items at lower contrast; and
    uniform noise of amplitude ``noise``. Boxes are tight around the item's strokes.
    """
    check_options(image_size, object_size, objects_per_image)
    (lo, hi), (n_lo, n_hi) = object_size, objects_per_image
    rng = random.Random(seed)
    draw_side = lambda: round(math.exp(rng.uniform(math.log(lo), math.log(hi))))  # noqa: E731  log-uniform
    noise_gen = torch.Generator().manual_seed(seed)
    canvases = torch.zeros(count, 1, image_size, image_size)
    targets = []
    for canvas in canvases[:, 0]:
        for _ in range(rng.randint(0, clutter)):  # pieces of items: stroke-like, but no class
            item = items[rng.randrange(len(items))]
            h, w = item.shape
            ph, pw = rng.randint(h // 4, h // 2), rng.randint(w // 4, w // 2)
            y, x = rng.randint(0, h - ph), rng.randint(0, w - pw)
            side = draw_side()
            piece = _resize(item[y : y + ph, x : x + pw], side, side) * rng.uniform(0.3, 0.7)
            top, left = rng.randint(0, image_size - side), rng.randint(0, image_size - side)
            region = canvas[top : top + side, left : left + side]
            torch.maximum(region, piece, out=region)
        boxes: list[list[float]] = []
        classes: list[int] = []
        for _ in range(rng.randint(n_lo, n_hi)):
            index = rng.randrange(len(items))
            side = draw_side()
            patch = _resize(items[index], side, side) * rng.uniform(0.6, 1.0)
            tight = _tight_box(patch, 0.25 * float(patch.max()))
            if tight is None:
                continue
            for _try in range(20):
                top, left = rng.randint(0, image_size - side), rng.randint(0, image_size - side)
                box = [left + tight[0], top + tight[1], left + tight[2], top + tight[3]]
                if (
                    not boxes
                    or box_iou(torch.tensor([box], dtype=torch.float32), torch.tensor(boxes)).max() <= max_overlap
                ):
                    region = canvas[top : top + side, left : left + side]
                    torch.maximum(region, patch, out=region)
                    boxes.append([float(v) for v in box])
                    classes.append(int(labels[index]))
                    break
        box_tensor, label_tensor = target(boxes, classes)
        targets.append({"boxes": box_tensor, "labels": label_tensor})
    canvases += torch.rand(canvases.shape, generator=noise_gen) * noise
    return canvases.round().clamp(0, 255).to(torch.uint8), targets


@DATASETS.register("tiny_objects")
class TinyObjectsDataModule(DetectionDataModule):
    """Synthetic small-object detection canvases from an IDX classification set.

    Args:
        name: shown in logs and the summary.
        source: keyword arguments of :class:`lga.data.IDXClassificationDataModule` for the
            items (``search_dirs``, ``train_files``, ``test_files``, ``hint``, ...).
        class_names: one per label of the source.
        num_train, num_val, num_test: canvases per split.
        image_size, and (through ``kwargs``) object_size, objects_per_image, clutter,
            max_overlap, noise: see :func:`generate`.
        seed: fixes the canvases (not the training run's seed: every run of a sweep sees
            the same data).
        in_chans (always 1), mean, std, name, batch_size, eval_batch_size, num_workers: see
            :class:`DetectionDataModule`.
    """

    # generate()'s canvas options arrive through **kwargs; the config schema lists them as this module's
    forwarded = (generate, CANVAS_OPTIONS)

    def __init__(
        self,
        *,
        source: dict[str, Any],
        class_names: Sequence[str] = DIGIT_NAMES,
        num_train: int = 1000,
        num_val: int = 200,
        num_test: int = 200,
        image_size: int = 256,
        seed: int = 0,
        in_chans: int = 1,
        mean: Sequence[float] = (0.06,),
        std: Sequence[float] = (0.18,),
        **kwargs: Any,
    ) -> None:
        if in_chans != 1:
            raise ValueError(f"tiny_objects canvases are grayscale: in_chans must be 1, got {in_chans}")
        canvas = {k: kwargs.pop(k) for k in CANVAS_OPTIONS if k in kwargs}
        super().__init__(image_size=image_size, in_chans=1, mean=mean, std=std, **kwargs)
        self.source = IDXClassificationDataModule(name=f"{self.name} source", **source)
        self.class_names = list(class_names)
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.options = {"image_size": image_size, **canvas}
        self.seed = seed
        check_options(
            image_size, canvas.get("object_size", DEFAULT_OBJECT_SIZE), canvas.get("objects_per_image", DEFAULT_OBJECTS)
        )

    def prepare_data(self) -> None:
        self.source.prepare_data()

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        self.source.setup()
        for offset, split in enumerate(SPLITS):
            items, labels = self.source.data[split].tensors
            images, targets = generate(
                items[:, 0], labels, self.sizes[split], seed=self.seed * 1000 + offset, **self.options
            )
            self.data[split] = DetectionDataset(images=images, targets=targets, in_chans=1)
