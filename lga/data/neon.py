"""``neon_trees``: real small-object detection, tree crowns in NEON aerial RGB imagery.

The MIT-licensed DeepForest package (Weinstein et al.) ships four annotated 10 cm/pixel
orthophoto crops from the US National Ecological Observatory Network in its wheel: two large
Yellowstone (YELL) crops, 2299x2472 and 1249x1035 px, and two 400x400 plots from Florida
(OSBS) and California (SOAP, crowns marked Alive or Dead): 951 crowns, a third of them under
32x32 px. ``make install`` copies them to ``<data_dir>/neon_trees`` (never committed: NEON's
data terms). Boxes are Pascal VOC XML (1-based, inclusive: every file's boxes run from 1 to
the image's width and height).

Images are cut into tiles and every split is made of whole images, so no tree, and no part
of a scene, is seen in two splits. The default split trains on the smaller Yellowstone crop,
whose crowns are boxed about twice as densely as the larger one's (216 against 101 per
megapixel: the larger crop leaves many visible crowns unboxed, which would teach a detector
that crowns are background); validates on the two 400 px plots (only the epoch is chosen on
them); and tests on the larger crop, the most held-out boxes (574, 573 of them kept in its
tiles), from the same site and sensor as training. There a detection of an unboxed crown counts
as a false positive, which lowers precision, and so mAP, the more the more real crowns a
detector finds: mAP differences between blocks are biased against the better one. Recall of
the boxed crowns (mAR) does not depend on the missing boxes, so the study's verdicts are on
mAR100 (conf/comparisons/neon.yaml).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision.io import ImageReadMode, decode_image
from torchvision.transforms.v2 import functional as TF

from .detection import SPLITS, AnnotationError, DetectionDataModule, DetectionDataset
from .idx import DatasetFileError
from .registry import DATASETS
from .voc import read_voc_xml

NEON_WHEEL = "deepforest==2.1.0"
YELL_LARGE, YELL_SMALL = "2019_YELL_2_528000_4978000_image_crop2", "2019_YELL_2_541000_4977000_image_crop"
NEON_IMAGES = (YELL_LARGE, YELL_SMALL, "OSBS_029", "SOAP_061")
DEFAULT_SPLITS = {"train": [YELL_SMALL], "val": ["OSBS_029", "SOAP_061"], "test": [YELL_LARGE]}
# the labels in the files: SOAP_061 marks each crown Alive or Dead, the others Tree
SOURCE_LABELS = ("Tree", "Alive", "Dead")
# what the detector trains on: the fixed tiles, or windows drawn at random (RandomViews)
TRAIN_VIEWS = ("tiles", "random")


def install_hint(root: Path) -> str:
    return (
        f"run `make install-neon` (part of `make install`), or by hand: `pip download --no-deps {NEON_WHEEL} -d DIR`, "
        f"then copy deepforest/data/<image>.png and <image>.xml from the wheel (a zip file) to {root}"
    )


@dataclass
class SourceImage:
    """One annotated image: uint8 (3, H, W) pixels, boxes (float (N, 4) xyxy, 0-based) and labels."""

    name: str
    pixels: torch.Tensor
    boxes: torch.Tensor
    labels: torch.Tensor


def read_source(root: Path, name: str, class_names: Sequence[str]) -> SourceImage:
    """``<root>/<name>.png`` and its boxes from ``<name>.xml``, labels as indices into ``class_names``
    (a single class maps Alive and Dead to it)."""
    image_file, xml_file = root / f"{name}.png", root / f"{name}.xml"
    for path in (image_file, xml_file):
        if not path.is_file():
            raise DatasetFileError(f"neon_trees: {path} not found; {install_hint(root)}")
    boxes, labels = read_voc_xml(xml_file, SOURCE_LABELS)
    names = [SOURCE_LABELS[i] for i in labels]
    if len(class_names) == 1:
        labels = [0] * len(names)
    else:
        unknown = sorted(set(names) - set(class_names))
        if unknown:
            raise AnnotationError(f"{xml_file}: labels {unknown} are not among class_names {list(class_names)}")
        labels = [list(class_names).index(n) for n in names]
    try:
        pixels = decode_image(str(image_file), mode=ImageReadMode.RGB)
    except (RuntimeError, OSError) as err:
        message = f"neon_trees: cannot read {image_file} ({err}); delete it and {install_hint(root)}"
        raise DatasetFileError(message) from None
    box_tensor = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    height, width = pixels.shape[1:]
    if len(box_tensor) and (box_tensor[:, 2].max() > width or box_tensor[:, 3].max() > height):
        raise AnnotationError(f"{xml_file}: boxes reach beyond the {width}x{height} image {image_file}")
    return SourceImage(name, pixels, box_tensor, torch.tensor(labels, dtype=torch.int64))


def tile_origins(length: int, tile_size: int) -> list[int]:
    """Where the tiles along one side start: the fewest tiles that cover it, the grid centred on
    the image, so the padding is split between both edges and every tile is mostly image."""
    count = math.ceil(length / tile_size)
    start = -((count * tile_size - length) // 2)
    return [start + i * tile_size for i in range(count)]


@dataclass
class TiledImage:
    """A source image cut into tiles: their pixels (uint8 (T, 3, S, S)), targets, and for
    each tile which of the source's boxes its targets are (indices)."""

    name: str
    tiles: torch.Tensor
    targets: list[dict[str, torch.Tensor]]
    source_boxes: list[torch.Tensor]
    num_boxes: int

    @property
    def dropped(self) -> int:
        """Source boxes in no tile: no tile holds more than ``min_visible`` of their area."""
        return self.num_boxes - sum(len(ids) for ids in self.source_boxes)


def tile_image(source: SourceImage, tile_size: int, min_visible: float = 0.5) -> TiledImage:
    """Cut ``source`` into a grid of disjoint ``tile_size`` squares (:func:`tile_origins`; zero
    padding beyond the image's edges). A box goes to a tile, clipped to it, when more than
    ``min_visible`` of its area lies inside: from 0.5 up, each box is in at most one tile, and a
    clipped box keeps more than half its area, so no slivers; a box cut by tile borders with no
    tile holding more than that fraction is dropped (counted in :attr:`TiledImage.dropped`)."""
    channels, height, width = source.pixels.shape
    boxes = source.boxes
    tiles, targets, source_boxes = [], [], []
    for top in tile_origins(height, tile_size):
        for left in tile_origins(width, tile_size):
            tile = torch.zeros(channels, tile_size, tile_size, dtype=torch.uint8)
            y0, x0 = max(top, 0), max(left, 0)
            y1, x1 = min(top + tile_size, height), min(left + tile_size, width)
            tile[:, y0 - top : y1 - top, x0 - left : x1 - left] = source.pixels[:, y0:y1, x0:x1]
            window = torch.tensor([left, top, left + tile_size, top + tile_size], dtype=torch.float32)
            clipped, keep = keep_visible(boxes, window, min_visible)
            tiles.append(tile)
            targets.append({"boxes": clipped, "labels": source.labels[keep]})
            source_boxes.append(keep)
    return TiledImage(source.name, torch.stack(tiles), targets, source_boxes, len(boxes))


def orient(image: torch.Tensor, boxes: torch.Tensor, orientation: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A square (C, S, S) ``image`` and its boxes mirrored left-right when ``orientation`` >= 4, then turned
    ``orientation % 4`` quarter turns counterclockwise: the 8 orientations 0-7 of a square."""
    size = image.shape[-1]
    if orientation >= 4:
        image = image.flip(-1)
        boxes = torch.stack([size - boxes[:, 2], boxes[:, 1], size - boxes[:, 0], boxes[:, 3]], dim=1)
    for _ in range(orientation % 4):
        image = torch.rot90(image, 1, dims=(1, 2))  # (row, col) -> (size - col, row)
        boxes = torch.stack([boxes[:, 1], size - boxes[:, 2], boxes[:, 3], size - boxes[:, 0]], dim=1)
    return image.contiguous(), boxes


class EightOrientations(Dataset):
    """Each sample of ``tiles`` in its 8 orientations (:func:`orient`): seen from above a forest has no up
    or handedness, so they are 8 views as real as the first; fixed, not drawn, so a resumed run sees the
    batches an uninterrupted one does."""

    def __init__(self, tiles: DetectionDataset) -> None:
        self.tiles = tiles

    def __len__(self) -> int:
        return 8 * len(self.tiles)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        image, target = self.tiles[index // 8]
        image, boxes = orient(image, target["boxes"], index % 8)
        return image, {"boxes": boxes, "labels": target["labels"]}


def keep_visible(boxes: torch.Tensor, window: torch.Tensor, min_visible: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes (xyxy) clipped to ``window`` (x0, y0, x1, y1) and shifted to its origin, with the indices of those
    that keep more than ``min_visible`` of their area inside it: the one rule of fixed tiles
    (:func:`tile_image`) and random views (:class:`RandomViews`)."""
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    clipped = torch.maximum(torch.minimum(boxes, window[2:].repeat(2)), window[:2].repeat(2)) - window[:2].repeat(2)
    visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
    keep = (visible > min_visible * areas).nonzero()[:, 0]
    return clipped[keep], keep


class RandomViews(Dataset):
    """Training views drawn at random from whole source images, a new set every epoch: a square window at a
    random place (inside the image) and scale (side ``image_size`` x s, s log-uniform in [1/scale, scale]),
    resized to ``image_size``; then one of the 8 orientations (:func:`orient`) if ``orientations``; then
    brightness, contrast and saturation each times a factor uniform in [1 - color, 1 + color]. A box is kept,
    clipped, when more than ``min_visible`` of it is in the window.

    Unlike fixed tiles, a crown is never seen twice at the same place, size and light, which is what a
    detector trained from scratch on a few hundred crowns memorises otherwise. View i of an epoch is drawn
    from a private generator seeded by (epoch seed, i), and lga reseeds every epoch (lga.callbacks.EpochSeed
    calls :meth:`reseed` with a seed from the run's seed and step): a resumed run sees the views an
    uninterrupted one does, and every attention block of a seed sees the same views, whatever the model
    draws from torch's global generator. Windows lie inside the image, so crowns at its edges are seen
    a little less often than the rest.
    """

    def __init__(
        self, sources: Sequence[SourceImage], image_size: int, length: int, *, min_visible: float = 0.5,
        scale: float = 1.5, color: float = 0.2, orientations: bool = True,
    ) -> None:  # fmt: skip
        check_views(sources, image_size, scale, color)
        self.sources, self.image_size, self.length = list(sources), image_size, length
        self.min_visible, self.scale, self.color, self.orientations = min_visible, scale, color, orientations
        # a view lands in an image with a chance in proportion to its area
        self.weights = torch.tensor([float(s.pixels.shape[1] * s.pixels.shape[2]) for s in self.sources])
        self.seed = 0

    def reseed(self, seed: int) -> None:
        self.seed = seed

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        draw = torch.Generator().manual_seed(self.seed * 1_000_003 + index)
        source = self.sources[int(torch.multinomial(self.weights, 1, generator=draw))]
        height, width = source.pixels.shape[1:]
        log_scale = math.log(self.scale)
        side = round(self.image_size * math.exp((2 * float(torch.rand((), generator=draw)) - 1) * log_scale))
        left = int(torch.randint(0, width - side + 1, (), generator=draw))
        top = int(torch.randint(0, height - side + 1, (), generator=draw))
        pixels = source.pixels[:, top : top + side, left : left + side]
        window = torch.tensor([left, top, left + side, top + side], dtype=torch.float32)
        boxes, keep = keep_visible(source.boxes, window, self.min_visible)
        if side != self.image_size:
            resized = F.interpolate(pixels[None].float(), size=self.image_size, mode="bilinear", antialias=True)
            pixels = resized[0].round().clamp(0, 255).to(torch.uint8)
            boxes = boxes * (self.image_size / side)
        if self.orientations:
            pixels, boxes = orient(pixels, boxes, int(torch.randint(0, 8, (), generator=draw)))
        if self.color:
            low, high = 1 - self.color, 1 + self.color
            for adjust in (TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation):
                pixels = adjust(pixels, float(torch.empty(()).uniform_(low, high, generator=draw)))
        return pixels, {"boxes": boxes, "labels": source.labels[keep]}


def check_views(sources: Sequence[SourceImage], image_size: int, scale: float, color: float) -> None:
    """:class:`RandomViews`' options are in range and every image holds its largest window."""
    if scale < 1:
        raise ValueError(f"view_scale must be at least 1 (1: no rescaling), got {scale}")
    if not 0 <= color < 1:
        raise ValueError(f"color_jitter must be in [0, 1), got {color}")
    largest = round(image_size * scale)
    small = [s.name for s in sources if min(s.pixels.shape[1:]) < largest]
    if small:
        raise ValueError(
            f"random views need training images at least {largest} px on each side (image_size x view_scale); "
            f"{', '.join(small)} {'is' if len(small) == 1 else 'are'} smaller: set dataset.train_views=tiles "
            "or a lower dataset.view_scale"
        )


def channel_stats(images: Sequence[torch.Tensor]) -> tuple[list[float], list[float]]:
    """Per-channel mean and standard deviation of [0, 1] pixels over uint8 (3, H, W) images."""
    pixels = torch.cat([image.flatten(1) for image in images], dim=1).double() / 255.0
    return pixels.mean(1).tolist(), pixels.std(1).tolist()


@DATASETS.register("neon_trees")
class NEONTreesDataModule(DetectionDataModule):
    """Tree-crown detection on NEON aerial tiles (see the module's docstring).

    Args:
        files_dir: the folder holding ``<image>.png`` and ``<image>.xml`` (``make install`` fills it).
        splits: split -> image names (file stems); an image may be in one split only
            (default: train on the smaller, densely boxed Yellowstone crop, validate on OSBS_029 and
            SOAP_061, test on the larger Yellowstone crop).
        image_size: the tiles' side in pixels, which the detector sees unscaled (400: the
            small plots are one tile each, DeepForest's patch size).
        min_visible: the part of a box's area that must lie in a tile for the tile to keep
            it, clipped (see :func:`tile_image`); in [0.5, 1).
        flip_rotate: train in the 8 orientations: every tile in each (:class:`EightOrientations`: an
            epoch is 8 passes over the training tiles, each in another orientation), or each random
            view in one drawn at random.
        train_views: ``tiles`` (the training images' fixed tiles) or ``random`` (:class:`RandomViews`:
            windows drawn anew every epoch at a random place and scale, with colour jitter; as many
            an epoch as the tiles in their 8 orientations).
        view_scale, color_jitter: the random views' scale range [1/view_scale, view_scale] and colour
            factor range [1 - color_jitter, 1 + color_jitter].
        single_class: one class, Tree (SOAP_061's Alive and Dead are trees); false keeps
            Tree, Alive and Dead apart (with the default split, Alive and Dead are only in
            validation).
        mean, std: per channel, of [0, 1] pixels; default: over the training images (not
            their padding).
        The rest: see :class:`DetectionDataModule`.
    """

    def __init__(
        self,
        *,
        files_dir: str,
        splits: dict[str, list[str]] | None = None,
        image_size: int = 400,
        min_visible: float = 0.5,
        flip_rotate: bool = True,
        train_views: str = "tiles",
        view_scale: float = 1.5,
        color_jitter: float = 0.2,
        single_class: bool = True,
        in_chans: int = 3,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        if in_chans != 3:
            raise ValueError(f"neon_trees images are RGB: in_chans must be 3, got {in_chans}")
        if not 0.5 <= min_visible < 1:
            raise ValueError(f"min_visible must be in [0.5, 1) (so a box is in at most one tile), got {min_visible}")
        self.root = Path(files_dir)
        self.splits = {split: list(names) for split, names in (splits or DEFAULT_SPLITS).items()}
        check_splits(self.splits)
        self.class_names = ["Tree"] if single_class else list(SOURCE_LABELS)
        if train_views not in TRAIN_VIEWS:
            raise ValueError(f"train_views must be one of {', '.join(TRAIN_VIEWS)}, got {train_views!r}")
        if train_views == "random" and kwargs.get("num_workers", 0):
            # a worker holds a copy of the dataset, which the epoch's reseed would not reach
            raise ValueError(
                "dataset.train_views=random draws its views in the main process: set dataset.num_workers=0"
            )
        self.min_visible, self.flip_rotate = min_visible, flip_rotate
        self.train_views, self.view_scale, self.color_jitter = train_views, view_scale, color_jitter
        if mean is None or std is None or train_views == "random":
            # the detector is built, with these, before setup(): the training images are read here too
            training = [self._read(name) for name in self.splits["train"]]
            if train_views == "random":
                check_views(training, image_size, view_scale, color_jitter)
            train_mean, train_std = channel_stats([source.pixels for source in training])
            mean, std = mean or train_mean, std or train_std
        super().__init__(image_size=image_size, in_chans=3, mean=mean, std=std, **kwargs)

    def _read(self, name: str) -> SourceImage:
        return read_source(self.root, name, self.class_names)

    def setup(self, stage: str | None = None) -> None:
        if self.data:
            return
        for split in SPLITS:
            tiled = [tile_image(self._read(name), self.image_size, self.min_visible) for name in self.splits[split]]
            tiles = DetectionDataset(
                images=torch.cat([t.tiles for t in tiled]), targets=[tgt for t in tiled for tgt in t.targets]
            )
            if split == "train" and self.train_views == "random":
                sources = [self._read(name) for name in self.splits[split]]
                self.data[split] = RandomViews(
                    sources, self.image_size, 8 * len(tiles), min_visible=self.min_visible, scale=self.view_scale,
                    color=self.color_jitter, orientations=self.flip_rotate,
                )  # fmt: skip
            else:
                self.data[split] = EightOrientations(tiles) if split == "train" and self.flip_rotate else tiles


def check_splits(splits: dict[str, list[str]]) -> None:
    """Each of train, val and test has images, and no image is in two of them."""
    if sorted(splits) != sorted(SPLITS) or not all(splits.values()):
        raise ValueError(f"splits must give images for exactly {', '.join(SPLITS)}, got {splits}")
    seen: dict[str, str] = {}
    for split, names in splits.items():
        for name in names:
            if name in seen:
                raise ValueError(f"image {name} is in both {seen[name]} and {split}: a split is made of whole images")
            seen[name] = split
