"""The datasets' original on-disk formats: IDX (MNIST family, gzipped or not) and CIFAR-10 python batches.

Both readers check what they read (magic numbers, shapes, counts) and raise a one-line :class:`UserError`
naming the file. CIFAR pickles go through a restricted unpickler that builds only the plain types and the
numpy arrays the format holds: a crafted file cannot run code.
"""

from __future__ import annotations

import gzip
import io
import pickle
import zlib
from pathlib import Path
from typing import Any

import numpy as np

from aebench.errors import UserError

IDX_UBYTE = 0x08
CIFAR_SIDE = 32
CIFAR_PIXELS = 3 * CIFAR_SIDE * CIFAR_SIDE
# The only globals a CIFAR-10 python batch needs: numpy's array reconstruction (the ``data`` array).
CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def read_bytes(path: Path) -> bytes:
    """The file's bytes, gunzipped for ``.gz``; a damaged or unreadable file is a UserError."""
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as fh:
                return fh.read()
        return path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise UserError(f"{path}: cannot read ({type(exc).__name__}: {exc}); replace the file") from None


def read_idx(path: Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (MNIST format), gzipped or not."""
    raw = read_bytes(path)
    if len(raw) < 4 or raw[:3] != bytes([0, 0, IDX_UBYTE]):
        raise UserError(f"{path}: not an unsigned-byte IDX file")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise UserError(f"{path}: truncated IDX header")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise UserError(f"{path}: truncated IDX file ({data.size} bytes for shape {dims})")
    return data.reshape(dims)


def check_split(images: np.ndarray, labels: np.ndarray, classes: int, where: str) -> None:
    """Images (N, H, W) or (N, C, H, W) with N labels in [0, classes); a UserError naming ``where`` otherwise."""
    if images.ndim not in (3, 4) or 0 in images.shape[1:]:
        raise UserError(f"{where}: images must be (N, H, W) or (N, C, H, W), got shape {list(images.shape)}")
    if images.shape[-1] != images.shape[-2]:
        raise UserError(f"{where}: images must be square, got {images.shape[-2]}x{images.shape[-1]}")
    if labels.ndim != 1 or len(labels) != len(images):
        raise UserError(f"{where}: {len(labels)} labels for {len(images)} images (shape {list(labels.shape)})")
    if len(images) == 0:
        raise UserError(f"{where}: no images")
    if labels.min() < 0 or labels.max() >= classes:
        raise UserError(f"{where}: labels must lie in 0..{classes - 1} (found {labels.min()}..{labels.max()})")


def latin1_bytes(text: str, encoding: str) -> bytes:
    """What a protocol-2 pickle written by Python 3 calls to rebuild ``bytes``; only latin-1 is accepted."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode(..., {encoding!r})")
    return text.encode("latin1")


class CifarUnpickler(pickle.Unpickler):
    """Builds dicts, lists, bytes, strings, numbers and numpy arrays only; any other global is refused."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return latin1_bytes
        if (module, name) in CIFAR_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refused global {module}.{name}")


def read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python pickle batch: images (N, 3, 32, 32) uint8 and labels int64."""
    raw = read_bytes(path)
    try:
        batch = CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as exc:  # any damage: the unpickler raises many types, all mean "not a CIFAR batch"
        raise UserError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise UserError(f"{path}: not a CIFAR-10 python batch (expected a dict with b'data' and b'labels')")
    try:
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch[b"labels"])
    except (TypeError, ValueError) as exc:
        raise UserError(f"{path}: unreadable data or labels ({exc})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_PIXELS:
        raise UserError(f"{path}: b'data' must be uint8 (N, {CIFAR_PIXELS}), got {data.dtype} {list(data.shape)}")
    if labels.dtype.kind not in "iu":
        raise UserError(f"{path}: b'labels' must be integers, got {labels.dtype}")
    images = data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE)
    labels = labels.astype(np.int64)
    check_split(images, labels, 10, str(path))
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
