"""LightningModules, heads and necks."""

from .base import MODELS, TaskModule
from .classification import ClassificationModule
from .cost import count_flops, count_params
from .detection import DetectionModule, build_detector
from .heads import ClassificationHead
from .necks import BackboneWithFPN

__all__ = [
    "MODELS", "BackboneWithFPN", "ClassificationHead", "ClassificationModule", "DetectionModule", "TaskModule",
    "build_detector", "count_flops", "count_params",
]  # fmt: skip
