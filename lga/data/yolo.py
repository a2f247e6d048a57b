"""YOLO-format detection data: a dataset yaml, image folders, one ``.txt`` of labels per image
(the format of Ultralytics' VisDrone, DOTA and GWHD conversions)."""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import Any

import yaml
from PIL import Image

from .detection import AnnotatedImage, AnnotationError, DetectionDataModule, target
from .registry import DATASETS

IMAGE_SUFFIXES = {".bmp", ".jpeg", ".jpg", ".png", ".tif", ".tiff", ".webp"}
TOLERANCE = 0.01  # normalised coordinates this far outside [0, 1] are rounding, and clipped


def read_data_yaml(path: str | Path) -> tuple[list[str], dict[str, list[Path]]]:
    """(class names, split -> image folders or list files) from an Ultralytics dataset yaml
    (``path``, ``train``, ``val``, optional ``test``, ``names`` as a list or ``{id: name}``)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise AnnotationError(f"dataset yaml {path} not found") from None
    except yaml.YAMLError as err:
        line = getattr(getattr(err, "problem_mark", None), "line", None)
        raise AnnotationError(f"{path}{'' if line is None else f':{line + 1}'}: malformed YAML ({err})") from None
    if not isinstance(data, dict) or "names" not in data or "train" not in data or "val" not in data:
        raise AnnotationError(f"{path}: a YOLO dataset yaml needs 'train', 'val' and 'names'")
    names = data["names"]
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise AnnotationError(f"{path}: 'names' ids must be 0..{len(names) - 1}, got {sorted(names)}")
        names = [names[i] for i in range(len(names))]
    root = Path(data.get("path") or ".")
    root = root if root.is_absolute() else path.parent / root
    splits = {}
    for split in ("train", "val", "test"):
        entries = data.get(split)
        if entries:
            splits[split] = [root / e for e in ([entries] if isinstance(entries, str) else entries)]
    return [str(n) for n in names], splits


def _images(sources: list[Path]) -> list[Path]:
    images: list[Path] = []
    for source in sources:
        if source.is_dir():
            images += sorted(p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        elif source.suffix == ".txt" and source.is_file():  # a list of image paths
            base = source.parent
            images += [(base / line.strip()) for line in source.read_text().splitlines() if line.strip()]
        else:
            raise AnnotationError(f"image source {source} is neither a folder nor a .txt list of images")
    return images


def label_path(image: Path) -> Path:
    """Ultralytics' convention: .../images/x.jpg -> .../labels/x.txt."""
    parts = list(image.parts)
    if "images" in parts:
        index = len(parts) - 1 - parts[::-1].index("images")
        parts[index] = "labels"
    return Path(*parts).with_suffix(".txt")


def read_labels(
    label_file: Path, width: int, height: int, num_classes: int
) -> tuple[list[list[float]], list[int]] | None:
    """Boxes (pixels, xyxy) and classes of one label file; None if its coordinates are out
    of bounds (Ultralytics' convention: that image is skipped, with a warning)."""
    boxes, labels = [], []
    for lineno, line in enumerate(label_file.read_text().splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            cls, values = int(fields[0]), [float(v) for v in fields[1:]]
        except ValueError:
            raise AnnotationError(f"{label_file}:{lineno}: expected numbers, got {line.strip()!r}") from None
        if not all(math.isfinite(v) for v in values):  # NaN compares false with every bound below
            raise AnnotationError(f"{label_file}:{lineno}: NaN or infinite coordinate in {line.strip()!r}")
        if len(values) == 4:  # x_center y_center width height
            cx, cy, w, h = values
            x0, y0, x1, y1 = cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2
        elif len(values) >= 6 and len(values) % 2 == 0:  # a polygon (segment): its bounding box
            x0, x1, y0, y1 = min(values[0::2]), max(values[0::2]), min(values[1::2]), max(values[1::2])
        else:
            raise AnnotationError(
                f"{label_file}:{lineno}: expected 'class x_center y_center width height' (or a polygon), "
                f"got {line.strip()!r}"
            )
        if not 0 <= cls < num_classes:
            raise AnnotationError(f"{label_file}:{lineno}: class {cls} is not in 0..{num_classes - 1}")
        if x1 <= x0 or y1 <= y0 or min(x0, y0) < -TOLERANCE or max(x1, y1) > 1 + TOLERANCE:
            warnings.warn(
                f"{label_file}:{lineno}: box {values} is empty or outside [0, 1]; image skipped", stacklevel=2
            )
            return None
        clip = lambda v: min(max(v, 0.0), 1.0)  # noqa: E731
        boxes.append([clip(x0) * width, clip(y0) * height, clip(x1) * width, clip(y1) * height])
        labels.append(cls)
    return boxes, labels


def read_yolo_split(sources: list[Path], num_classes: int) -> list[AnnotatedImage]:
    """Images of one split with their labels; an image without a label file is background."""
    records = []
    for image in _images(sources):
        labels_file = label_path(image)
        boxes: list[list[float]] = []
        classes: list[int] = []
        if labels_file.is_file() and image.is_file():
            with Image.open(image) as im:  # reads the header only
                width, height = im.size
            parsed = read_labels(labels_file, width, height, num_classes)
            if parsed is None:
                continue
            boxes, classes = parsed
        records.append(AnnotatedImage(image, *target(boxes, classes)))
    return records


@DATASETS.register("yolo")
class YOLODataModule(DetectionDataModule):
    """Detection data in YOLO format, described by an Ultralytics dataset yaml.

    Args:
        data: the dataset yaml. Without a ``test`` entry the validation split is the test split.
        The rest: see :class:`DetectionDataModule`.
    """

    def __init__(self, *, data: str, image_size: int = 640, **kwargs: Any) -> None:
        super().__init__(image_size=image_size, **kwargs)
        self.data_yaml = Path(data)
        self.class_names, self.splits = read_data_yaml(self.data_yaml)

    def read_split(self, split: str) -> tuple[list[AnnotatedImage], str]:
        sources = self.splits.get(split, self.splits["val"])
        return read_yolo_split(sources, self.num_classes), f"{self.data_yaml} ({split}: {', '.join(map(str, sources))})"
