"""Datasets as LightningDataModules."""

from .classification import IDXClassificationDataModule
from .idx import DatasetFileError, read_idx, write_idx

__all__ = ["DatasetFileError", "IDXClassificationDataModule", "read_idx", "write_idx"]
