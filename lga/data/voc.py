"""Pascal VOC detection data (VOC2007, VOC2012): Annotations/*.xml, JPEGImages, ImageSets/Main."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any, Sequence

from .detection import AnnotatedImage, AnnotationError, DetectionDataModule, check_box, target
from .registry import DATASETS

VOC_CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
    "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip


def read_voc_xml(xml_file: Path, class_names: Sequence[str]) -> tuple[list[list[float]], list[int]]:
    """Boxes (0-based pixels, xyxy) and classes of one annotation file. Malformed XML, unknown
    classes, missing fields and boxes outside the image raise :class:`AnnotationError` with
    the file and line. ``difficult`` objects are kept (VOC's evaluation ignores them; this
    one counts them)."""
    text = xml_file.read_text()
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise AnnotationError(f"{xml_file}:{err.position[0]}: malformed XML ({err})") from None
    # each object's line, and the line of its <name> (where an unknown class is written)
    object_starts = [m.start() for m in re.finditer(r"<object\b", text)]
    object_lines = [text.count("\n", 0, start) + 1 for start in object_starts]
    name_lines = [text.count("\n", 0, max(start, text.find("<name", start))) + 1 for start in object_starts]
    try:
        width, height = int(root.findtext("size/width")), int(root.findtext("size/height"))
    except (TypeError, ValueError):
        raise AnnotationError(f"{xml_file}: missing or non-integer size/width and size/height") from None
    boxes, labels = [], []
    for obj, line, name_line in zip(root.iter("object"), object_lines, name_lines):
        where = f"{xml_file}:{line}"
        name = (obj.findtext("name") or "").strip()
        if name not in class_names:
            raise AnnotationError(f"{xml_file}:{name_line}: unknown class {name!r}; valid: {', '.join(class_names)}")
        try:
            x0, y0, x1, y1 = (float(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax"))
        except (TypeError, ValueError):
            raise AnnotationError(f"{where}: object {name!r} needs numeric bndbox xmin, ymin, xmax, ymax") from None
        # VOC pixels are 1-based and boxes inclusive: (xmin - 1, ymin - 1, xmax, ymax) in 0-based xyxy
        boxes.append(check_box([x0 - 1, y0 - 1, x1, y1], width, height, where))
        labels.append(class_names.index(name))
    return boxes, labels


def read_voc_split(root: str | Path, split: str, class_names: Sequence[str] = VOC_CLASSES) -> list[AnnotatedImage]:
    """The images listed in ``ImageSets/Main/<split>.txt`` under ``root`` (e.g. VOCdevkit/VOC2012)."""
    root = Path(root)
    listing = root / "ImageSets" / "Main" / f"{split}.txt"
    if not listing.is_file():
        raise AnnotationError(f"VOC split list {listing} not found (expected ImageSets/Main/{split}.txt under {root})")
    records = []
    for image_id in (line.split()[0] for line in listing.read_text().splitlines() if line.strip()):
        xml_file = root / "Annotations" / f"{image_id}.xml"
        if not xml_file.is_file():
            raise AnnotationError(f"{listing}: {image_id} has no annotation file {xml_file}")
        records.append(
            AnnotatedImage(root / "JPEGImages" / f"{image_id}.jpg", *target(*read_voc_xml(xml_file, class_names)))
        )
    return records


@DATASETS.register("voc")
class VOCDataModule(DetectionDataModule):
    """Detection data in Pascal VOC layout.

    Args:
        root: the folder holding Annotations, JPEGImages and ImageSets (e.g. VOCdevkit/VOC2012).
        splits: split -> ImageSets/Main list name (VOC2012 has no public test labels: the
            default tests on ``val``).
        class_names: the label set (default: VOC's 20 classes).
        The rest: see :class:`DetectionDataModule`.
    """

    def __init__(
        self,
        *,
        root: str,
        splits: dict[str, str] | None = None,
        class_names: Sequence[str] = VOC_CLASSES,
        image_size: int = 512,
        **kwargs: Any,
    ) -> None:
        super().__init__(image_size=image_size, **kwargs)
        self.root, self.class_names = Path(root), list(class_names)
        self.splits = dict(splits or {"train": "train", "val": "val", "test": "val"})

    def read_split(self, split: str) -> tuple[list[AnnotatedImage], str]:
        return read_voc_split(self.root, self.splits[split], self.class_names), f"{self.root} ({self.splits[split]})"
