"""The dataset registry: ``@DATASETS.register("<name>")`` on a LightningDataModule makes ``conf/dataset``
options with ``_target_`` that class possible (its schema is ``schema/dataset/<name>``)."""

from __future__ import annotations

from ..registry import Registry

DATASETS = Registry("dataset")
