"""Datasets: the registry, their on-disk formats and loaders, and batch-level pixel operations."""

from aebench.data import sources  # noqa: F401  (registers every dataset)
from aebench.data.registry import DATASETS, DatasetCache, DatasetSpec, ImageData, default_data_root, get_dataset

__all__ = ["DATASETS", "DatasetCache", "DatasetSpec", "ImageData", "default_data_root", "get_dataset"]
