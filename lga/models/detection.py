"""LightningModule for object detection: backbone (with its attention) -> FPN -> FCOS or RetinaNet."""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import torch
from lightning.pytorch.loggers import WandbLogger
from torch import nn
from torchmetrics import MaxMetric
from torchmetrics.detection import MeanAveragePrecision
from torchvision.models.detection import FCOS, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetHead

from .base import MODELS, TaskModule
from .cost import count_flops, count_params
from .necks import BackboneWithFPN

DETECTORS = ("fcos", "retinanet")
logging.getLogger("faster_coco_eval").setLevel(logging.WARNING)  # it prints COCO's table at INFO
# what MeanAveragePrecision.compute() calls them -> the names lga logs (COCO's definitions)
MAP_KEYS = {
    "map_50": "map50", "map": "map", "map_75": "map75", "map_small": "map_small",
    "map_medium": "map_medium", "map_large": "map_large", "mar_100": "mar100", "mar_small": "mar_small",
}  # fmt: skip


# build_detector's options that a config sets (image size and normalisation come from the data)
DETECTOR_OPTIONS = (
    "detector", "fpn_channels", "extra_levels", "head_convs", "anchor_scale", "score_thresh", "nms_thresh",
    "detections_per_img",
)  # fmt: skip


def build_detector(
    backbone: nn.Module,
    num_classes: int,
    *,
    detector: str = "fcos",
    fpn_channels: int = 64,
    extra_levels: int = 0,
    head_convs: int = 2,
    anchor_scale: Optional[float] = None,
    image_size: int = 256,
    image_mean: Sequence[float] = (0.5,),
    image_std: Sequence[float] = (0.25,),
    score_thresh: float = 0.05,
    nms_thresh: float = 0.6,
    detections_per_img: int = 100,
) -> nn.Module:
    """torchvision's FCOS (Tian et al., 2019) or RetinaNet (Lin et al., 2017) on
    :class:`BackboneWithFPN`, with a head of ``head_convs`` convolutions per tower.

    Anchors follow the FPN strides: FCOS's (which only set the size ranges each level
    learns) are ``anchor_scale`` x stride (default 1, torchvision's); RetinaNet's are 3
    scales x 3 ratios at ``anchor_scale`` x stride (default 2: 16 px at stride 8, for
    small objects; torchvision's COCO setting is 4). Images are resized so their
    shorter side is ``image_size`` (longer at most the same) and normalised.
    """
    if detector not in DETECTORS:
        raise ValueError(f"unknown detector {detector!r}; valid: {', '.join(DETECTORS)}")
    if head_convs < 1:
        raise ValueError(f"head_convs must be at least 1, got {head_convs}")
    if detector == "fcos" and fpn_channels % 16:
        raise ValueError(f"fpn_channels must be a multiple of 16 for FCOS's GroupNorm(16), got {fpn_channels}")
    neck = BackboneWithFPN(backbone, channels=fpn_channels, extra_levels=extra_levels)
    common = dict(
        min_size=image_size, max_size=image_size, image_mean=list(image_mean), image_std=list(image_std),
        score_thresh=score_thresh, nms_thresh=nms_thresh, detections_per_img=detections_per_img,
    )  # fmt: skip
    levels = len(neck.strides)
    if detector == "fcos":
        scale = anchor_scale or 1.0
        anchors = AnchorGenerator(tuple((s * scale,) for s in neck.strides), ((1.0,),) * levels)
        head = FCOSHead(fpn_channels, 1, num_classes, num_convs=head_convs)
        return FCOS(neck, num_classes, anchor_generator=anchors, head=head, **common)
    scale = anchor_scale or 2.0
    anchors = AnchorGenerator(
        tuple(tuple(s * scale * 2 ** (i / 3) for i in range(3)) for s in neck.strides), ((0.5, 1.0, 2.0),) * levels
    )
    head = RetinaNetHead(fpn_channels, anchors.num_anchors_per_location()[0], num_classes)
    for tower in (head.classification_head, head.regression_head):
        tower.conv = tower.conv[:head_convs]  # torchvision builds 4
    return RetinaNet(neck, num_classes, anchor_generator=anchors, head=head, **common)


@MODELS.register("detection")
class DetectionModule(TaskModule):
    """Backbone (attention inside) -> FPN -> FCOS / RetinaNet head, torchvision's losses.

    Logs ``train/loss`` and its parts; after every validation and test epoch COCO's
    metrics from torchmetrics' MeanAveragePrecision (faster_coco_eval backend):
    ``{val,test}/{map50,map,map75,map_small,map_medium,map_large,mar100,mar_small}``
    (fractions; -1 where a size class has no objects) and ``val/map50_best``. With a
    W&B logger, the first ``log_images`` validation images go to W&B each epoch with
    their true boxes and the predictions scoring at least ``image_score_thresh``.

    Args:
        backbone: a :class:`lga.backbones.Backbone` returning stride 8/16/32 maps.
        num_classes: object classes (labels 0 .. num_classes-1).
        class_names: for the W&B images.
        image_mean, image_std: per channel, of [0, 1] pixels (from the dataset).
        input_shape: (C, H, W) of the images: channels, and the side they are resized to.
        optimizer, scheduler: see :class:`lga.models.TaskModule`.
        The rest: see :func:`build_detector`.
    Input: a list of uint8 (C, H, W) images; in eval mode returns torchvision's
    detections, a list of ``{"boxes", "scores", "labels"}``.
    """

    task = "detection"
    monitor = "val/map50"
    data_options_names = ("num_classes", "input_shape", "class_names", "image_mean", "image_std")
    # build_detector's options arrive through **kwargs; the config schema lists them as this module's
    forwarded = (build_detector, DETECTOR_OPTIONS)

    def __init__(
        self,
        backbone: nn.Module,
        num_classes: int,
        *,
        image_mean: Sequence[float] = (0.5,),
        image_std: Sequence[float] = (0.25,),
        log_images: int = 4,
        image_score_thresh: float = 0.3,
        class_names: Optional[Sequence[str]] = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**{k: v for k, v in kwargs.items() if k not in DETECTOR_OPTIONS})
        self.save_hyperparameters(ignore=["backbone", "optimizer", "scheduler"])
        in_chans, image_size = self.input_shape[0], max(self.input_shape[1:])
        if len(image_mean) != in_chans or len(image_std) != in_chans:
            raise ValueError(
                f"image_mean and image_std need {in_chans} values (one per channel), "
                f"got {list(image_mean)}, {list(image_std)}"
            )
        self.detector = build_detector(
            backbone, num_classes, image_size=image_size, image_mean=image_mean, image_std=image_std,
            **{k: v for k, v in kwargs.items() if k in DETECTOR_OPTIONS},
        )  # fmt: skip
        self.class_names = list(class_names) if class_names else [str(i) for i in range(num_classes)]
        self.map_metrics = nn.ModuleDict(
            {
                split: MeanAveragePrecision(box_format="xyxy", iou_type="bbox", backend="faster_coco_eval")
                for split in ("val", "test")
            }
        )
        self.val_map50_best = MaxMetric()
        self.val_map50_best.persistent(True)
        self.cost = {"params": count_params(self.detector), "flops": count_flops(self.detector, (1, *self.input_shape))}

    @staticmethod
    def _as_float(images: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        return [img.float() / 255.0 if img.dtype == torch.uint8 else img for img in images]

    def forward(self, images: Sequence[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        return self.detector(self._as_float(images))

    def training_step(self, batch, batch_idx: int) -> torch.Tensor:
        images, targets = batch
        losses = self.detector(self._as_float(images), targets)
        loss = sum(losses.values())
        batch_size = len(images)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True, batch_size=batch_size)
        for name, value in losses.items():
            self.log(f"train/loss_{name}", value, on_step=False, on_epoch=True, batch_size=batch_size)
        return loss

    @classmethod
    def data_options(cls, datamodule: Any) -> dict[str, Any]:
        return {
            **super().data_options(datamodule),
            "class_names": datamodule.class_names, "image_mean": datamodule.mean, "image_std": datamodule.std,
        }  # fmt: skip

    def _evaluate(self, batch, split: str) -> list[dict[str, torch.Tensor]]:
        images, targets = batch
        predictions = self(images)
        self.map_metrics[split].update(predictions, targets)
        return predictions

    def validation_step(self, batch, batch_idx: int) -> None:
        predictions = self._evaluate(batch, "val")
        if batch_idx == 0 and not self.trainer.sanity_checking:
            self._log_examples(batch, predictions)

    def test_step(self, batch, batch_idx: int) -> None:
        self._evaluate(batch, "test")
        self.count_test_images(len(batch[0]))

    def _log_map(self, split: str) -> dict[str, float]:
        results = self.map_metrics[split].compute()  # gathered across processes under DDP
        self.map_metrics[split].reset()
        values = {name: float(results[key]) for key, name in MAP_KEYS.items()}
        for name, value in values.items():
            self.log(f"{split}/{name}", value, prog_bar=name == "map50")
        return values

    def on_validation_epoch_end(self) -> None:
        values = self._log_map("val")
        if self.trainer.sanity_checking:  # a few batches before training: not a result
            return
        self.val_map50_best(torch.tensor(values["map50"]))
        self.log("val/map50_best", self.val_map50_best.compute())

    def on_test_epoch_end(self) -> None:
        self._log_map("test")

    def _log_examples(self, batch, predictions) -> None:
        loggers = [lg for lg in self.loggers if isinstance(lg, WandbLogger)]
        count = min(self.hparams.log_images, len(predictions))
        if not loggers or not count:
            return
        images, targets = batch
        labels = dict(enumerate(self.class_names))

        def box_data(boxes, classes, scores=None):
            rows = []
            for i, (box, cls) in enumerate(zip(boxes.tolist(), classes.tolist())):
                row = {
                    "position": dict(zip(("minX", "minY", "maxX", "maxY"), box)), "domain": "pixel",
                    "class_id": int(cls), "box_caption": labels.get(int(cls), str(cls)),
                }  # fmt: skip
                if scores is not None:
                    row["scores"] = {"score": float(scores[i])}
                    row["box_caption"] += f" {float(scores[i]):.2f}"
                rows.append(row)
            return {"box_data": rows, "class_labels": labels}

        pictures, boxes = [], []
        for image, target, pred in zip(images[:count], targets[:count], predictions[:count]):
            keep = pred["scores"] >= self.hparams.image_score_thresh
            pictures.append(image.permute(1, 2, 0).squeeze(-1).cpu().numpy())
            boxes.append({
                "ground_truth": box_data(target["boxes"].cpu(), target["labels"].cpu()),
                "predictions": box_data(
                    pred["boxes"][keep].cpu(), pred["labels"][keep].cpu(), pred["scores"][keep].cpu()
                ),
            })  # fmt: skip
        for logger in loggers:
            logger.log_image("val/examples", pictures, step=self.global_step, boxes=boxes)
