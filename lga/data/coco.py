"""COCO-format detection data (COCO, COCO-minitrain and TinyPerson ship this way)."""

from __future__ import annotations

import json
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any, Mapping

from .detection import AnnotatedImage, AnnotationError, DetectionDataModule, check_box, target
from .registry import DATASETS


def read_coco(annotation_file: str | Path, image_dir: str | Path) -> tuple[list[str], list[AnnotatedImage]]:
    """(class names, images with boxes) from a COCO ``instances_*.json``.

    Classes are the file's categories in id order, numbered from 0. Crowd annotations
    (``iscrowd: 1``) and zero-size boxes are skipped, as torchvision's COCO references do
    (the latter with a warning); images without annotations are kept as background.
    Boxes more than a pixel outside their image, unknown image or category ids, and
    malformed JSON raise :class:`AnnotationError` naming the file and the entry or line.
    """
    path, image_dir = Path(annotation_file), Path(image_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise AnnotationError(f"annotation file {path} not found") from None
    except json.JSONDecodeError as err:
        raise AnnotationError(f"{path}:{err.lineno}: malformed JSON (column {err.colno}: {err.msg})") from None
    if not isinstance(data, dict) or any(key not in data for key in ("images", "annotations", "categories")):
        raise AnnotationError(f"{path}: not a COCO detection file (needs 'images', 'annotations' and 'categories')")
    try:
        categories = sorted(data["categories"], key=lambda c: c["id"])
        class_of = {c["id"]: i for i, c in enumerate(categories)}
        names = [str(c["name"]) for c in categories]
        images = {im["id"]: im for im in data["images"]}
        sizes = {im_id: (int(im["width"]), int(im["height"])) for im_id, im in images.items()}
    except (KeyError, TypeError, ValueError) as err:
        raise AnnotationError(
            f"{path}: malformed 'categories' or 'images' entry ({type(err).__name__}: {err})"
        ) from None
    boxes: dict[int, list[list[float]]] = {im_id: [] for im_id in images}
    labels: dict[int, list[int]] = {im_id: [] for im_id in images}
    degenerate = 0
    for index, ann in enumerate(data["annotations"]):
        where = f"{path}: annotations[{index}] (id {ann.get('id')})"
        if ann.get("iscrowd", 0):
            continue
        if ann.get("image_id") not in sizes:
            raise AnnotationError(f"{where}: image_id {ann.get('image_id')!r} is not in 'images'")
        if ann.get("category_id") not in class_of:
            raise AnnotationError(f"{where}: unknown category_id {ann.get('category_id')!r}; valid: {sorted(class_of)}")
        bbox = ann.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4 or not all(isinstance(v, (int, float)) for v in bbox):
            raise AnnotationError(f"{where}: bbox must be [x, y, width, height], got {bbox!r}")
        x, y, w, h = bbox
        if w <= 0 or h <= 0:
            degenerate += 1
            continue
        width, height = sizes[ann["image_id"]]
        boxes[ann["image_id"]].append(check_box([x, y, x + w, y + h], width, height, where))
        labels[ann["image_id"]].append(class_of[ann["category_id"]])
    if degenerate:
        warnings.warn(f"{path}: skipped {degenerate} annotation(s) with zero width or height", stacklevel=2)
    records = [
        AnnotatedImage(image_dir / images[im_id]["file_name"], *target(boxes[im_id], labels[im_id])) for im_id in images
    ]
    return names, records


@DATASETS.register("coco")
class COCODataModule(DetectionDataModule):
    """Detection data in COCO format: one annotation file and one image folder per split.

    Args:
        annotations: split -> ``instances_*.json``; ``train`` and ``val`` required, ``test``
            optional (default: the validation split).
        images: split -> folder the ``file_name`` entries are relative to.
        The rest: see :class:`DetectionDataModule`.
    """

    def __init__(
        self, *, annotations: Mapping[str, str], images: Mapping[str, str], image_size: int = 640, **kwargs: Any
    ) -> None:
        super().__init__(image_size=image_size, **kwargs)
        missing = [s for s in ("train", "val") if s not in annotations or s not in images]
        if missing:
            raise ValueError(
                f"dataset {self.name!r}: annotations and images need the splits {missing} (test is optional)"
            )
        self.annotations, self.images = dict(annotations), dict(images)

    @cached_property
    def _splits(self) -> dict[str, tuple[list[str], list[AnnotatedImage]]]:
        return {split: read_coco(self.annotations[split], self.images[split]) for split in self.annotations}

    @property
    def class_names(self) -> list[str]:
        return self._splits["train"][0]

    def read_split(self, split: str) -> tuple[list[AnnotatedImage], str]:
        source = split if split in self._splits else "val"  # no test annotations: test on val
        names, records = self._splits[source]
        if names != self.class_names:
            raise AnnotationError(
                f"{self.annotations[source]}: categories {names} differ from the training file's {self.class_names}"
            )
        return records, self.annotations[source]
