"""Image folders as datasets: ``folder:PATH`` in an experiment's ``datasets:`` names a folder in torchvision's
``ImageFolder`` layout, ``PATH/train/<class>/*.png`` and ``PATH/test/<class>/*.jpg`` (PATH absolute, or relative
to the data root). Classes are the class folders' names, sorted; every image is decoded once, stretched to the
square side of the largest one (at most ``MAX_IMAGE_SIZE``), grey when all are grey, into uint8 (N, C, H, W) as
the built-in sets; ``data.image_size`` resizes them from there. The arrays are cached as an ``.npz`` (never
pickled) under ``<data root>/.aebench-folders/``, keyed on every image's relative path, size and mtime, so a
changed folder is decoded again.

A folder may come from anyone: nothing outside it is read (a link to a file is followed only to a file inside it;
a link to a folder, or a relative PATH leaving the data root or passing a link, is refused), only the formats
below are decoded (not EPS: Pillow hands it to Ghostscript), each image's size is checked from its header before
any pixel is decoded, and whatever is wrong stops the run with one line naming the file.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import numpy as np

from aebench.config import MAX_IMAGE_SIZE
from aebench.data.registry import PREFIXED, DatasetSpec, ImageData
from aebench.errors import UserError
from aebench.files import UnsafePath, inside, read_bytes, read_npz, safe_folder, write_npz

if TYPE_CHECKING:
    from PIL import Image

log = logging.getLogger(__name__)

PREFIX = "folder:"
SPLITS = ("train", "test")
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pbm")
FORMATS = ("PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM")  # the Pillow readers used, none calling a program
GREY_MODES = ("1", "L", "LA", "I", "I;16", "I;16B", "I;16L", "F")
MAX_FILE_BYTES = 2**26  # one image file (a 32x32 JPEG: 1 KB)
MAX_PIXELS = 2**26  # one image, from its header: 8192 x 8192 (Pillow's own bomb limit is 89M)
MAX_SIDE = 2**14  # one image's side, from its header
MAX_BYTES = 2**32  # a folder's decoded pixels and labels (the lossy JPEG copy of CIFAR-10: 185 MB)
CACHE = ".aebench-folders"  # below the data root
CACHE_VERSION = 1  # in the cache key: a change to the decoding invalidates every cached folder
UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._-]+")


def is_folder_spec(name: str) -> bool:
    return name.startswith(PREFIX)


def folder_name(spec: str) -> str:
    """The readable, safe name a ``folder:PATH`` entry gives its rows and folders: the folder's own name, every
    run of other characters than letters, digits, '.', '_' and '-' made one '-'; a UserError when none is left
    or the path leaves its root."""
    text = spec[len(PREFIX) :]
    path = PurePath(text)
    if not text or not spec.isprintable() or ".." in path.parts:
        raise UserError(f"{spec[:200]!r}: expected folder:PATH, PATH a folder (absolute, or below the data root)")
    name = UNSAFE_CHARS.sub("-", path.name).lstrip("._-")[:100]
    if not name:
        raise UserError(f"{spec[:200]!r}: the folder's name gives no dataset name (use letters or digits in it)")
    return name


def folder_path(spec: str, root: Path) -> Path:
    """The folder a ``folder:PATH`` entry names: PATH itself when absolute, else below ``root``, no link on the
    way (an UnsafePath otherwise)."""
    path = Path(spec[len(PREFIX) :]).expanduser()
    if path.is_absolute():
        return path
    try:
        return inside(root, root / path)
    except UnsafePath:
        raise UnsafePath(
            f"{spec}: passes a symbolic link below the data root {root}; name the folder by its absolute path"
        ) from None


def folder_dataset(spec: str) -> DatasetSpec:
    """The registry entry of a ``folder:PATH`` entry (built on demand: the name carries all it needs)."""
    folder_name(spec)  # a malformed entry fails here, with its line
    return DatasetSpec(
        spec,
        f"image folder {spec[len(PREFIX) :]}",
        lambda root: load_folder(folder_path(spec, root), root),
        lambda root: is_image_folder(folder_path(spec, root)),
    )


PREFIXED[PREFIX] = folder_dataset


def is_image_folder(path: Path) -> bool:
    """Whether ``path`` holds ``train/`` and ``test/`` folders (not links)."""
    return all(os.path.isdir(path / s) and not os.path.islink(path / s) for s in SPLITS)


def image_folders(root: Path) -> list[Path]:
    """The image folders directly below ``root``, by name (what ``aebench list`` shows)."""
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if not p.is_symlink() and p.is_dir() and is_image_folder(p))


# --------------------------------------------------------------------------- listing


@dataclass(frozen=True)
class ImageFile:
    """One image of a folder: where it is read (a link's target, inside the folder), its path as listed
    (relative to the folder), its label and what the cache key sees of it."""

    path: Path
    relative: str
    label: int
    size: int
    mtime_ns: int


def list_folder(folder: Path) -> tuple[list[str], dict[str, list[ImageFile]]]:
    """The classes and each split's images, sorted; a UserError naming what breaks the layout or leaves it."""
    if not folder.is_dir():
        raise UserError(f"{folder}: no such folder (an image folder holds train/<class>/ and test/<class>/)")
    if not any(folder.iterdir()):
        raise UserError(f"{folder}: empty; an image folder holds train/<class>/ and test/<class>/ image folders")
    real = Path(os.path.realpath(folder))
    classes = {split: class_folders(folder, split) for split in SPLITS}
    if classes["train"] != classes["test"]:
        only = {s: sorted(set(classes[s]) - set(classes[o])) for s, o in (("train", "test"), ("test", "train"))}
        differ = "; ".join(f"only in {s}/: {', '.join(names[:5]) or '-'}" for s, names in only.items())
        raise UserError(f"{folder}: train/ and test/ hold different classes ({differ})")
    images = {
        split: [f for label, name in enumerate(classes[split]) for f in class_images(folder, real, split, name, label)]
        for split in SPLITS
    }
    return classes["train"], images


def folder_link(path: Path, folder: Path) -> UnsafePath:
    """The one line refusing a link to a folder (or a split) inside the image folder ``folder``."""
    return UnsafePath(
        f"{path}: a symbolic link inside {folder}; aebench follows links in an image folder only to image files "
        "inside it"
    )


def printable(parent: str | Path, name: str) -> None:
    """A UserError for a file or folder name holding a line break, a control or an undecodable character: what
    aebench prints of a folder stays one line."""
    if not name.isprintable():
        raise UserError(f"{str(parent)!r} holds {name!r}, a name with a control character; rename it")


def class_folders(folder: Path, split: str) -> list[str]:
    """The class folders of ``folder/split`` (files and hidden folders beside them are ignored)."""
    path = folder / split
    if os.path.islink(path):
        raise folder_link(path, folder)
    if not path.is_dir():
        raise UserError(f"{folder}: no {split}/ folder (an image folder holds train/<class>/ and test/<class>/)")
    names = []
    for entry in sorted(os.scandir(path), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        printable(path, entry.name)
        if entry.is_symlink():
            raise folder_link(path / entry.name, folder)
        if entry.is_dir(follow_symlinks=False):
            names.append(entry.name)
    if not names:
        raise UserError(f"{path}: no class folders (put each class's images in {path}/<class>/)")
    return names


def class_images(folder: Path, real: Path, split: str, name: str, label: int) -> list[ImageFile]:
    """The images below ``folder/split/name`` (in subfolders too), by relative path; hidden files and folders and
    files of other suffixes are ignored; a link to a folder, or to anything outside ``folder``, is refused."""

    def fail(exc: OSError) -> None:
        raise exc

    found = []
    for parent, dirs, files in os.walk(folder / split / name, onerror=fail):  # never enters a link to a folder
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))  # os.walk enters only these
        for entry in dirs:
            printable(parent, entry)
            if os.path.islink(os.path.join(parent, entry)):
                raise folder_link(Path(parent, entry), folder)
        for entry in sorted(files):
            if entry.startswith(".") or not entry.lower().endswith(SUFFIXES):
                continue
            printable(parent, entry)
            path = Path(parent, entry)
            target = Path(os.path.realpath(path)) if os.path.islink(path) else path  # no link above: all checked
            if target is not path and not target.is_relative_to(real):
                raise UnsafePath(f"{path}: a symbolic link to a file outside {folder}; refused")
            try:
                info = os.stat(target)
            except OSError as exc:  # a dangling link: named by itself, never by its target's text
                raise UserError(f"{path}: cannot read ({exc.strerror})") from None
            found.append(ImageFile(target, str(path.relative_to(folder)), label, info.st_size, info.st_mtime_ns))
    if not found:
        raise UserError(f"{folder / split / name}: no images ({', '.join(SUFFIXES)})")
    return found


# --------------------------------------------------------------------------- decoding


def open_image(image: ImageFile) -> Image.Image:
    """The image, its header read and its size checked (nothing decoded yet); a UserError naming the file when it
    is not an image of the formats read or declares too many pixels."""
    from PIL import Image

    try:
        data = read_bytes(image.path, MAX_FILE_BYTES)
    except OSError as exc:
        raise UserError(f"{image.path}: cannot read ({exc.strerror or exc})") from None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            opened = Image.open(io.BytesIO(data), formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise UserError(f"{image.path}: refused as a decompression bomb ({exc})") from None
    except Exception as exc:  # Pillow raises many types for a damaged or foreign file
        raise unreadable(image, exc) from None
    width, height = opened.size
    if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
        raise UserError(
            f"{image.path}: declares {width}x{height} pixels, more than aebench decodes ({MAX_PIXELS:,} pixels, "
            f"{MAX_SIDE} a side): a decompression bomb or a huge image (shrink it)"
        )
    return opened


def unreadable(image: ImageFile, exc: Exception) -> UserError:
    """The one line for a file that is no image of ``FORMATS``, or a damaged one."""
    from PIL import UnidentifiedImageError

    why = "" if isinstance(exc, UnidentifiedImageError) else f": {type(exc).__name__}: {exc}".splitlines()[0][:200]
    return UserError(f"{image.path}: not a readable image ({', '.join(FORMATS)}){why}; replace or remove it")


def decode(image: ImageFile, side: int, mode: str) -> np.ndarray:
    """The image as uint8 (C, side, side): converted to ``mode`` (L or RGB), stretched to the square."""
    from PIL import Image

    with open_image(image) as opened:
        try:
            pixels = opened.convert(mode)
            if pixels.size != (side, side):
                pixels = pixels.resize((side, side), Image.Resampling.BILINEAR)
            array = np.asarray(pixels, dtype=np.uint8)
        except Exception as exc:  # truncated or damaged pixel data shows only when decoded
            raise unreadable(image, exc) from None
    return array[None] if array.ndim == 2 else array.transpose(2, 0, 1)


def decode_folder(folder: Path, images: dict[str, list[ImageFile]]) -> dict[str, np.ndarray]:
    """Every image decoded: ``{split: (N, C, S, S) uint8}``, S the largest side (at most ``MAX_IMAGE_SIZE``), one
    channel when every image is grey; the headers are read first, so the total is checked before decoding."""
    every = [image for split in SPLITS for image in images[split]]
    headers = []
    for image in every:
        with open_image(image) as opened:
            headers.append((max(opened.size), opened.mode in GREY_MODES))
    side = min(max(s for s, _ in headers), MAX_IMAGE_SIZE)
    channels = 1 if all(grey for _, grey in headers) else 3
    total = len(every) * (channels * side * side + 8)  # uint8 pixels, an int64 label
    if total > MAX_BYTES:
        raise UserError(
            f"{folder}: {len(every):,} images at {side}x{side} make {total:,} bytes, more than the {MAX_BYTES:,} "
            "aebench holds (shrink the images)"
        )
    if len({s for s, _ in headers}) > 1:
        log.info("%s: images of several sizes, each stretched to %dx%d", folder, side, side)
    mode = "L" if channels == 1 else "RGB"
    return {split: np.stack([decode(image, side, mode) for image in images[split]]) for split in SPLITS}


def load_folder(folder: Path, root: Path) -> ImageData:
    """The image folder as a dataset: from the cache when it holds this folder as it is now, else decoded (and
    cached, where the data root can be written)."""
    try:
        classes, images = list_folder(folder)
    except OSError as exc:
        raise UserError(f"{exc.filename or folder}: cannot read ({exc.strerror or exc})") from None
    key = cache_key(folder, images)
    labels = {f"y_{split}": np.array([i.label for i in images[split]], dtype=np.int64) for split in SPLITS}
    cache = root / CACHE / f"{hashlib.sha256(os.fsencode(os.path.realpath(folder))).hexdigest()[:16]}.npz"
    arrays = read_cache(cache, root, key, labels)
    if arrays is None:
        log.info("decoding %s (%d images; cached in %s)", folder, sum(map(len, images.values())), cache)
        arrays = {**{f"x_{split}": x for split, x in decode_folder(folder, images).items()}, **labels}
        write_cache(cache, root, key, arrays)
    return ImageData.from_numpy(
        arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], len(classes), tuple(classes)
    )


# --------------------------------------------------------------------------- the cache


def cache_key(folder: Path, images: dict[str, list[ImageFile]]) -> str:
    """What the cached arrays were decoded from: every image's relative path, label, size and mtime."""
    lines = [f"aebench image folder v{CACHE_VERSION} {os.path.realpath(folder)}"]
    lines += [f"{i.relative}\0{i.label}\0{i.size}\0{i.mtime_ns}" for s in SPLITS for i in images[s]]
    return hashlib.sha256("\n".join(lines).encode("utf-8", "surrogateescape")).hexdigest()


ARRAYS = ["x_train", "y_train", "x_test", "y_test"]


def read_cache(path: Path, root: Path, key: str, labels: dict[str, np.ndarray]) -> dict[str, np.ndarray] | None:
    """The cached arrays when ``path`` (below ``root``, no link on the way) holds them for ``key``, with the folder's
    ``labels`` and one square uint8 image of 1 or 3 channels each; None otherwise (missing, stale, damaged: the
    folder is decoded again)."""
    try:
        arrays = read_npz(inside(root, path), ["key", *ARRAYS], MAX_BYTES + 2**16)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged or crafted cache is only a cache: decode the folder again
        log.warning("%s: ignored (%s)", path, type(exc).__name__)
        return None
    if str(arrays["key"]) != key:
        return None
    for split in SPLITS:
        x, y = arrays[f"x_{split}"], arrays[f"y_{split}"]
        shape_ok = x.ndim == 4 and x.shape[1] in (1, 3) and 0 < x.shape[2] == x.shape[3]
        if not (x.dtype == np.uint8 and shape_ok and len(x) == len(y) and np.array_equal(y, labels[f"y_{split}"])):
            log.warning("%s: ignored (arrays not of this folder)", path)
            return None
    return arrays


def write_cache(path: Path, root: Path, key: str, arrays: dict[str, np.ndarray]) -> None:
    """Cache the arrays; a data root that cannot be written (read-only, a link on the way) only costs a warning."""
    try:
        safe_folder(root, path.parent)
        write_npz(path, key=np.array(key), **arrays)
    except (OSError, UserError) as exc:
        log.warning("%s: not cached (%s)", path, getattr(exc, "strerror", None) or exc)
