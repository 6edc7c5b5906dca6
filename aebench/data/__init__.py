"""Datasets: the registry, their on-disk formats and loaders, and batch-level pixel operations."""

from aebench.data import folders, sources  # noqa: F401  (register every dataset, and image folders)
from aebench.data.registry import DATASETS, DatasetCache, DatasetSpec, ImageData, default_data_root, get_dataset

__all__ = ["DATASETS", "DatasetCache", "DatasetSpec", "ImageData", "default_data_root", "get_dataset"]
