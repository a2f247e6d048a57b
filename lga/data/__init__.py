"""Datasets as LightningDataModules."""

from .classification import IDXClassificationDataModule
from .coco import COCODataModule, read_coco
from .detection import AnnotationError, DetectionDataModule
from .idx import DatasetFileError, read_idx, write_idx
from .neon import NEONTreesDataModule
from .registry import DATASETS
from .tiny_objects import TinyObjectsDataModule
from .voc import VOCDataModule, read_voc_split
from .yolo import YOLODataModule, read_data_yaml, read_yolo_split

__all__ = [
    "DATASETS", "AnnotationError", "COCODataModule", "DatasetFileError", "DetectionDataModule",
    "IDXClassificationDataModule", "NEONTreesDataModule", "TinyObjectsDataModule", "VOCDataModule", "YOLODataModule",
    "read_coco", "read_data_yaml", "read_idx", "read_voc_split", "read_yolo_split", "write_idx",
]  # fmt: skip
