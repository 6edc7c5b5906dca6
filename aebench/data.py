"""Dataset registry: each dataset loads once into uint8 tensors (N, C, H, W) with official splits.

MNIST, Fashion-MNIST and CIFAR-10 are read from their original on-disk formats (IDX, gzipped or
not; CIFAR python pickles) under ``--data-root``; when the files are missing and the host is
reachable, torchvision downloads them, otherwise a one-line error names the folder and the files.
"""

from __future__ import annotations

import gzip
import os
import pickle
import socket
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from aebench.config import DataConfig
from aebench.errors import UserError

DEBIAN_FASHION = Path("/usr/share/datasets/fashion-mnist")
SUBSET_SEED = 0  # fixed so every cell of a sweep sees the same subset


@dataclass
class ImageData:
    """A dataset split into train/test, images as uint8 (N, C, H, W), labels int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_size(self) -> int:
        return self.x_train.shape[-1]

    def to(self, device: torch.device | str) -> "ImageData":
        return ImageData(*(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test)), self.num_classes)


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its loader and a one-line description."""

    name: str
    description: str
    load: Callable[[Path], ImageData]


DATASETS: dict[str, DatasetSpec] = {}


def register_dataset(name: str, description: str) -> Callable[[Callable[[Path], ImageData]], Callable[[Path], ImageData]]:
    """Decorator adding a loader ``fn(root) -> ImageData`` to the registry."""

    def wrap(fn: Callable[[Path], ImageData]) -> Callable[[Path], ImageData]:
        DATASETS[name] = DatasetSpec(name, description, fn)
        return fn

    return wrap


def default_data_root() -> Path:
    """``$AEBENCH_DATA`` or the per-user cache folder."""
    env = os.environ.get("AEBENCH_DATA")
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "aebench" / "data"


# --------------------------------------------------------------------------- on-disk formats


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (MNIST format), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise UserError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"{path}: truncated IDX file ({data.size} bytes for shape {dims})")
    return data.reshape(dims)


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python pickle batch: images (N, 3, 32, 32) uint8 and labels."""
    with open(path, "rb") as fh:
        batch = pickle.load(fh, encoding="bytes")
    images = np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    return images, labels


IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
CIFAR_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


def find_file(folders: list[Path], stem: str) -> Path | None:
    """First of ``stem`` or ``stem.gz`` present in the folders."""
    for folder in folders:
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def host_reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the URL's host opens within ``timeout`` seconds."""
    parts = urllib.parse.urlparse(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def download_or_explain(folder: Path, files: list[str], url: str, download: Callable[[], None]) -> None:
    """Download with torchvision when the host answers; otherwise a UserError naming what to place where."""
    if host_reachable(url):
        try:
            download()
            return
        except Exception as exc:  # network errors vary by backend; all mean "could not download"
            reason = f"download from {url} failed ({exc})"
    else:
        reason = f"{urllib.parse.urlparse(url).hostname} is unreachable (offline?)"
    raise UserError(f"dataset files missing in {folder} and {reason}: place {', '.join(files)} there, or pass --data-root")


def load_idx_dataset(folders: list[Path], target: Path, url: str, download: Callable[[], None]) -> ImageData:
    """An MNIST-format dataset from the first folder holding each file, downloading into ``target`` if none does."""
    stems = [*IDX_FILES["train"], *IDX_FILES["test"]]
    if any(find_file(folders, s) is None for s in stems):
        download_or_explain(target, stems, url, download)
    arrays = [read_idx(find_file(folders, s)) for s in stems]
    x_train, y_train, x_test, y_test = (torch.from_numpy(a.copy()) for a in arrays)
    return ImageData(x_train[:, None], y_train.long(), x_test[:, None], y_test.long(), 10)


@register_dataset("mnist", "MNIST handwritten digits, 60k/10k, 28x28 grey (torchvision download)")
def load_mnist(root: Path) -> ImageData:
    from torchvision.datasets import MNIST

    folder = root / "MNIST" / "raw"
    return load_idx_dataset([folder], folder, MNIST.mirrors[0], lambda: MNIST(str(root), download=True))


@register_dataset("fashion-mnist", "Fashion-MNIST clothing, 60k/10k, 28x28 grey (Debian copy used when present)")
def load_fashion_mnist(root: Path) -> ImageData:
    from torchvision.datasets import FashionMNIST

    folder = root / "FashionMNIST" / "raw"
    return load_idx_dataset(
        [folder, DEBIAN_FASHION], folder, FashionMNIST.mirrors[0], lambda: FashionMNIST(str(root), download=True)
    )


@register_dataset("cifar10", "CIFAR-10 natural images, 50k/10k, 32x32 RGB (torchvision download)")
def load_cifar10(root: Path) -> ImageData:
    from torchvision.datasets import CIFAR10

    folder = root / "cifar-10-batches-py"
    if any(not (folder / f).is_file() for f in CIFAR_FILES):
        download_or_explain(folder, CIFAR_FILES, CIFAR10.url, lambda: CIFAR10(str(root), download=True))
    train = [read_cifar_batch(folder / f) for f in CIFAR_FILES[:-1]]
    x_test, y_test = read_cifar_batch(folder / CIFAR_FILES[-1])
    x_train = np.concatenate([x for x, _ in train])
    y_train = np.concatenate([y for _, y in train])
    return ImageData(*(torch.from_numpy(a) for a in (x_train, y_train, x_test, y_test)), 10)


@register_dataset("digits", "scikit-learn's bundled 8x8 digits, 1,437/360 fixed split (offline)")
def load_digits(root: Path) -> ImageData:
    from sklearn.datasets import load_digits as sk_digits

    bunch = sk_digits()
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)[:, None]
    order = np.random.default_rng(SUBSET_SEED).permutation(len(images))
    test, train = order[:360], order[360:]
    labels = bunch.target.astype(np.int64)
    return ImageData(*(torch.from_numpy(a) for a in (images[train], labels[train], images[test], labels[test])), 10)


# --------------------------------------------------------------------------- preparation


def get_dataset(name: str) -> DatasetSpec:
    if name not in DATASETS:
        raise UserError(f"unknown dataset '{name}' (known: {', '.join(DATASETS)})")
    return DATASETS[name]


def resize_uint8(x: torch.Tensor, size: int, chunk: int = 4096) -> torch.Tensor:
    """Resize uint8 images (antialiased bilinear) in chunks; returns uint8."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    out = [
        F.interpolate(part.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        .round_()
        .clamp_(0, 255)
        .to(torch.uint8)
        for part in x.split(chunk)
    ]
    return torch.cat(out)


def subset(x: torch.Tensor, y: torch.Tensor, limit: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, seeded subset of at most ``limit`` items."""
    if limit is None or limit >= len(x):
        return x, y
    idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(SUBSET_SEED))[:limit].sort().values
    return x[idx], y[idx]


def prepare(raw: ImageData, cfg: DataConfig) -> ImageData:
    """Apply subset limits, resizing and channel conversion once, in memory."""
    x_train, y_train = subset(raw.x_train, raw.y_train, cfg.limit_train)
    x_test, y_test = subset(raw.x_test, raw.y_test, cfg.limit_test)
    if cfg.image_size:
        x_train, x_test = resize_uint8(x_train, cfg.image_size), resize_uint8(x_test, cfg.image_size)
    if cfg.channels:
        if cfg.channels not in (1, 3):
            raise UserError(f"data.channels must be 1 or 3 (got {cfg.channels})")
        if raw.channels == 1 and cfg.channels == 3:
            x_train, x_test = x_train.expand(-1, 3, -1, -1).contiguous(), x_test.expand(-1, 3, -1, -1).contiguous()
        elif raw.channels == 3 and cfg.channels == 1:
            weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
            x_train, x_test = ((x.float() * weights).sum(1, keepdim=True).round().to(torch.uint8) for x in (x_train, x_test))
    return ImageData(x_train, y_train, x_test, y_test, raw.num_classes)


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
