"""LightningModules and heads."""

from .classification import ClassificationModule
from .cost import count_flops, count_params
from .heads import ClassificationHead

__all__ = ["ClassificationHead", "ClassificationModule", "count_flops", "count_params"]
