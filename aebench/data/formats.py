"""The datasets' original on-disk formats: IDX (MNIST family, gzipped or not) and CIFAR-10 python batches.

Both readers check what they read (magic numbers, shapes, counts) and raise a one-line :class:`UserError`
naming the file. CIFAR pickles go through a restricted unpickler that builds only the plain types and the
numpy arrays the format holds: a crafted file cannot run code. Both bound what they allocate: an IDX header's
sizes are checked (in Python integers) against the file's real size before any array exists, a gzip is read
only up to what its header promises, and a CIFAR batch must hold its pixels as one array (nested lists, which
can expand a small pickle into gigabytes, are refused before any array is built); its opcodes are counted before
it is unpickled, which bounds the objects it can build (a list of small integers costs 4-8 times its bytes).
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import pickle
import pickletools
import zlib
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from aebench.errors import UserError
from aebench.files import open_binary, read_bytes

IDX_UBYTE = 0x08
IDX_MAX_DIMS = 4
IDX_LIMIT = 2**32  # bytes of pixels one IDX file may declare (MNIST's training images: 47 MB)
GZIP_RATIO = 32  # a gzipped IDX file may promise at most this many times its size (MNIST's: 5x), plus GZIP_SLACK
GZIP_SLACK = 2**20
CIFAR_LIMIT = 2**26  # bytes of one CIFAR-10 batch file (each is 31 MB; 47 MB re-pickled by Python 3)
CIFAR_OPCODES = (
    10**6
)  # pickle opcodes in one batch (each is ~20,000; 90,000 re-pickled): each builds one object at most
CHUNK = 2**22
CIFAR_SIDE = 32
CIFAR_PIXELS = 3 * CIFAR_SIDE * CIFAR_SIDE
# The only globals a CIFAR-10 python batch needs: numpy's array reconstruction (the ``data`` array).
CIFAR_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}


def damaged(path: Path, exc: Exception) -> UserError:
    """The one line for a file that cannot be read or decompressed."""
    return UserError(f"{path}: cannot read ({type(exc).__name__}: {exc}); replace the file")


def read_exactly(fh: BinaryIO, size: int, path: Path, what: str) -> bytes:
    """``size`` bytes of ``fh``; a UserError naming the file when it ends first."""
    data = fh.read(size)
    if len(data) < size:
        raise UserError(f"{path}: truncated IDX file (ends inside the {what})")
    return data


def read_idx(path: Path) -> np.ndarray:
    """Read an unsigned-byte IDX file (MNIST format), gzipped or not.

    The header's shape is checked before anything is allocated: against ``IDX_LIMIT``, against the file's size
    (plain) or ``GZIP_RATIO`` times it (gzipped), and the pixels are then read straight into one array of the
    declared size, so a crafted file costs at most what it declares, and a damaged one fails with one line.
    """
    try:
        with open_binary(path, IDX_LIMIT + 4 + 4 * 255, follow=True) as raw:
            size = os.fstat(raw.fileno()).st_size
            fh = gzip.GzipFile(fileobj=raw, mode="rb") if path.suffix == ".gz" else raw
            return read_idx_stream(fh, path, size)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
        raise damaged(path, exc) from None


def read_idx_stream(fh: BinaryIO, path: Path, size: int) -> np.ndarray:
    """The IDX array of an open (possibly gunzipping) stream of a file of ``size`` bytes."""
    magic = fh.read(4)
    if len(magic) < 4 or magic[:3] != bytes([0, 0, IDX_UBYTE]):
        raise UserError(f"{path}: not an unsigned-byte IDX file")
    ndim = magic[3]
    if not 1 <= ndim <= IDX_MAX_DIMS:
        raise UserError(f"{path}: IDX header declares {ndim} dimensions (expected 1 to {IDX_MAX_DIMS})")
    header = read_exactly(fh, 4 * ndim, path, "header")
    dims = [int.from_bytes(header[4 * i : 4 * i + 4], "big") for i in range(ndim)]
    count = 1
    for side in dims:
        count *= side  # a Python int: no overflow
    if path.suffix != ".gz" and count != size - 4 - 4 * ndim:
        raise UserError(f"{path}: truncated or damaged IDX file ({size - 4 - 4 * ndim:,} bytes for shape {dims})")
    promised = min(IDX_LIMIT, GZIP_RATIO * size + GZIP_SLACK)
    if count > promised:
        raise UserError(
            f"{path}: IDX header declares shape {dims} ({count:,} bytes), more than {IDX_LIMIT:,} bytes or "
            f"{GZIP_RATIO} times the file's size: damaged or crafted"
        )
    data = np.empty(count, dtype=np.uint8)
    view, filled = memoryview(data), 0
    while filled < count:
        got = fh.readinto(view[filled : filled + CHUNK])
        if not got:
            raise UserError(f"{path}: truncated IDX file ({filled} bytes for shape {dims})")
        filled += got
    if fh.read(1):
        raise UserError(f"{path}: IDX file longer than its shape {dims} (damaged)")
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
    try:
        raw = read_bytes(path, CIFAR_LIMIT, follow=True)
    except OSError as exc:
        raise damaged(path, exc) from None
    try:
        opcodes = sum(1 for _ in itertools.islice(pickletools.genops(raw), CIFAR_OPCODES + 1))
        if opcodes > CIFAR_OPCODES:
            raise UserError(f"{path}: more than {CIFAR_OPCODES:,} pickle opcodes; not a CIFAR-10 python batch")
        batch = CifarUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except UserError:
        raise
    except Exception as exc:  # any damage: the unpickler raises many types, all mean "not a CIFAR batch"
        raise UserError(f"{path}: not a CIFAR-10 python batch ({type(exc).__name__}: {exc})") from None
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise UserError(f"{path}: not a CIFAR-10 python batch (expected a dict with b'data' and b'labels')")
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != CIFAR_PIXELS:
        found = f"{data.dtype} {list(data.shape)}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserError(f"{path}: b'data' must be uint8 (N, {CIFAR_PIXELS}) in one array, got {found}")
    images, labels = data.reshape(-1, 3, CIFAR_SIDE, CIFAR_SIDE), cifar_labels(batch[b"labels"], path)
    check_split(images, labels, 10, str(path))
    return images, labels


def cifar_labels(labels: Any, path: Path) -> np.ndarray:
    """The labels as int64: a flat list of Python ints (what CIFAR-10 stores) or a 1-D integer array."""
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu" or labels.ndim != 1:
            raise UserError(f"{path}: b'labels' must be integers, got {labels.dtype} {list(labels.shape)}")
        return labels.astype(np.int64)
    if not isinstance(labels, list) or not all(type(v) is int for v in labels):
        raise UserError(f"{path}: b'labels' must be a flat list of integers")
    try:
        return np.array(labels, dtype=np.int64)
    except OverflowError:
        raise UserError(f"{path}: b'labels' holds integers beyond 64 bits") from None


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
