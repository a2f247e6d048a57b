"""Backbones that take any registered attention block (see ``lga.attention``)."""

from .base import Backbone
from .mobilenetv3 import MobileNetV3
from .registry import BACKBONES
from .resnet import ResNet18
from .timm_features import TimmBackbone

__all__ = [
    "BACKBONES",
    "Backbone",
    "MobileNetV3",
    "ResNet18",
    "TimmBackbone",
]
