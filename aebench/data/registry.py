"""Dataset registry: each dataset loads once into uint8 tensors (N, C, H, W) with official splits.

Torch loads inside the functions that move pixels, so naming and listing datasets (``aebench list``,
``--dry-run``) costs no torch import.

MNIST, Fashion-MNIST and CIFAR-10 are read from their original on-disk formats (IDX, gzipped or
not; CIFAR python pickles) under ``--data-root``; when the files are missing and the host is
reachable, torchvision downloads them, otherwise a one-line error names the folder and the files.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aebench.config import DataConfig
from aebench.errors import UserError

if TYPE_CHECKING:
    import numpy as np
    import torch

SUBSET_SEED = 0  # fixed so every cell of a sweep sees the same subset


@dataclass
class ImageData:
    """A dataset split into train/test, images as uint8 (N, C, H, W), labels int64; ``classes`` names the labels
    where the data itself does (an image folder's class folders), else the registry does."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    classes: tuple[str, ...] = ()

    @classmethod
    def from_numpy(cls, x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray,
                   num_classes: int, classes: tuple[str, ...] = ()) -> ImageData:  # fmt: skip
        """Tensors from numpy arrays: uint8 images (N, C, H, W) as they are, labels as int64."""
        import torch

        def tensor(a: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(a if a.flags.writeable else a.copy())

        return cls(tensor(x_train), tensor(y_train).long(), tensor(x_test), tensor(y_test).long(), num_classes, classes)

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]

    def to(self, device: torch.device | str) -> ImageData:
        return ImageData(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)),
            self.num_classes,
            self.classes,
        )


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader, a one-line description, whether its files are on disk under a root, and
    its class names (index = label)."""

    name: str
    description: str
    load: Callable[[Path], ImageData]
    on_disk: Callable[[Path], bool]
    classes: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {}
PREFIXED: dict[str, Callable[[str], DatasetSpec]] = {}  # a name prefix (folder:) -> the entry of a name it starts


def register_dataset(
    name: str,
    description: str,
    on_disk: Callable[[Path], bool] = lambda root: True,
    classes: tuple[str, ...] = tuple("0123456789"),
) -> Callable[[Callable[[Path], ImageData]], Callable[[Path], ImageData]]:
    """Decorator adding a loader ``fn(root) -> ImageData`` to the registry; ``on_disk(root)`` says whether it
    would load without a download (default: always, for bundled data); ``classes`` names the labels in order."""

    def wrap(fn: Callable[[Path], ImageData]) -> Callable[[Path], ImageData]:
        DATASETS[name] = DatasetSpec(name, description, fn, on_disk, classes)
        return fn

    return wrap


def default_data_root() -> Path:
    """``$AEBENCH_DATA`` or the per-user cache folder."""
    env = os.environ.get("AEBENCH_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "aebench" / "data"


def get_dataset(name: str) -> DatasetSpec:
    """The registered dataset ``name``, or the entry a prefixed name gives (an image folder's ``folder:PATH``)."""
    for prefix, entry in PREFIXED.items():
        if name.startswith(prefix):
            return entry(name)
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)}; or folder:PATH, an image folder)")
    return DATASETS[name]


def resize_uint8(x: torch.Tensor, size: int, how: str = "aebench", chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images in chunks (``how``: ``DataConfig.resize``); returns uint8."""
    import torch
    import torch.nn.functional as F

    if x.shape[-1] == size and x.shape[-2] == size:
        return x

    def resized(part: torch.Tensor) -> torch.Tensor:
        if how != "fastai":
            return F.interpolate(part, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        line = torch.linspace(-1, 1, size)  # fastai v1's _affine_grid; its grid_sample left align_corners unset
        grid = torch.stack(torch.meshgrid(line, line, indexing="xy"), -1).expand(len(part), -1, -1, -1)
        return F.grid_sample(part, grid, padding_mode="reflection", align_corners=False)

    return torch.cat([resized(part.float()).round_().clamp_(0, 255).to(torch.uint8) for part in x.split(chunk)])


def subset(x: torch.Tensor, y: torch.Tensor, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of at most ``limit`` items."""
    import torch

    if limit is None or limit >= len(x):
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(SUBSET_SEED))[:limit].sort().values
    return x[idx], y[idx]


def prepare(raw: ImageData, cfg: DataConfig) -> ImageData:
    """Apply subset limits, resizing and channel conversion once, in memory."""
    import torch

    x_train, y_train = subset(raw.x_train, raw.y_train, cfg.limit_train)
    x_test, y_test = subset(raw.x_test, raw.y_test, cfg.limit_test)
    if cfg.image_size:
        x_train, x_test = (resize_uint8(x, cfg.image_size, cfg.resize) for x in (x_train, x_test))
    if cfg.channels:
        if cfg.channels not in (1, 3):
            raise UserError(f"data.channels must be 1 or 3 (got {cfg.channels})")
        if raw.channels == 1 and cfg.channels == 3:
            x_train, x_test = x_train.expand(-1, 3, -1, -1).contiguous(), x_test.expand(-1, 3, -1, -1).contiguous()
        elif raw.channels == 3 and cfg.channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x_train, x_test = (
                (x.float() * weights).sum(1, keepdim=True).round().to(torch.uint8) for x in (x_train, x_test)
            )
    return ImageData(x_train, y_train, x_test, y_test, raw.num_classes, raw.classes)


class DatasetCache:
    """Loads each raw dataset once per process and hands out prepared views."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._raw: dict[str, ImageData] = {}

    def raw(self, name: str) -> ImageData:
        if name not in self._raw:
            self._raw[name] = get_dataset(name).load(self.root)
        return self._raw[name]

    def prepared(self, name: str, cfg: DataConfig) -> ImageData:
        return prepare(self.raw(name), cfg)
