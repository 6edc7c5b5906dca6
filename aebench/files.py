"""Files inside a results or report folder, opened safely: no symbolic link followed, no file outside the folder
read or written, no partial file left by a fault, no read larger than its stated bound.

A folder's contents may come from someone else (results folders are shared and committed), so every path below
a folder the user named is checked with :func:`inside` (no symbolic link on the way) and every file is opened with
``O_NOFOLLOW`` and checked to be a regular file. Writes go to a fresh temporary file (``O_EXCL``, random name)
renamed over the target, so the target is either the old file or the complete new one.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from aebench.errors import UserError

# errors of the machine rather than of one cell: a sweep cannot go on, so they stop it with one line
TORCH_WRITE_FAILURES = ("No space left", "unexpected pos", "file write failed")  # torch.save's RuntimeError texts
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO, errno.EFBIG}
NPZ_LIMIT = 256 * 2**20  # bytes of arrays an .npz read by aebench may hold once loaded (what aebench writes: < 50 MB)


class UnsafePath(UserError):
    """A symbolic link, a non-regular file, or a path leaving its folder, where aebench reads or writes."""


class TooLarge(UserError):
    """A file (or what it declares it holds) larger than aebench reads of its kind."""


def is_machine_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a disk-full / read-only / permission / I/O error (also when wrapped by torch or numpy)."""
    return machine_error(exc) is not None


def machine_error(exc: BaseException | None) -> BaseException | None:
    """The disk-full / read-only / permission / I/O error in ``exc``'s chain (itself, its cause or context), if any."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
            return exc
        if isinstance(exc, RuntimeError) and any(s in str(exc) for s in TORCH_WRITE_FAILURES):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def fault_text(exc: BaseException) -> str:
    """One line for a machine fault: the OS's wording (e.g. 'No space left on device') when there is one."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        if isinstance(exc, RuntimeError):  # torch's texts ("unexpected pos 7104 vs 7000") say little
            return "write failed (disk full or unwritable)"
        exc = exc.__cause__ or exc.__context__
    return "write failed"


def fault_line(exc: BaseException) -> str:
    """``path: reason`` of a machine fault, naming the file when the OS error names one."""
    found = machine_error(exc)
    filename = getattr(found, "filename", None)
    return f"{filename}: {fault_text(exc)}" if filename else fault_text(exc)


# --------------------------------------------------------------------------- staying inside a folder


def linked(path: Path, root: Path | None = None) -> UnsafePath:
    """The one line refusing the symbolic link ``path`` (found inside ``root``)."""
    where = f" inside {root}" if root is not None else ""
    return UnsafePath(f"{path}: a symbolic link{where}; aebench never follows links in a results or report folder")


def inside(root: Path, path: Path) -> Path:
    """``path``, checked to lie below ``root`` with no symbolic link from ``root`` down (parts that do not exist
    yet are fine); an UnsafePath naming the link otherwise. ``root`` itself is the user's choice and may be a link."""
    root, path = Path(root), Path(path)
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        raise UnsafePath(f"{path}: not inside {root}") from None
    if ".." in parts:
        raise UnsafePath(f"{path}: leaves {root} ('..'); refused")
    current = root
    for part in parts:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            break
        if stat.S_ISLNK(mode):
            raise linked(current, root)
    return path


def safe_folder(root: Path, path: Path) -> Path:
    """Create ``path`` (and the folders between ``root`` and it) where missing, refusing any symbolic link below
    ``root``; returns ``path``."""
    inside(root, path)
    Path(root).mkdir(parents=True, exist_ok=True)
    current = Path(root)
    for part in path.relative_to(root).parts:
        current = current / part
        with contextlib.suppress(FileExistsError):
            os.mkdir(current)  # never follows a link: an existing one is EEXIST, checked below
        if not stat.S_ISDIR(os.lstat(current).st_mode):
            raise UnsafePath(f"{current}: not a folder (a symbolic link or a file); aebench needs a folder there")
    return path


def check_tree(root: Path) -> None:
    """No symbolic link anywhere below ``root`` (a folder about to be written into); an UnsafePath naming the
    first one found otherwise."""
    for folder, dirs, files in os.walk(root):  # os.walk lists links to folders but never enters them
        for name in sorted(dirs + files):
            path = Path(folder) / name
            if path.is_symlink():
                raise linked(path, root)


# --------------------------------------------------------------------------- reading


def open_regular(path: Path, limit: int, follow: bool = False) -> int:
    """A descriptor of the regular file ``path``, opened without following a link unless ``follow`` (a file the
    user named, not one found in a folder); a FIFO or device is refused, never waited on; a TooLarge error when it
    holds more than ``limit`` bytes."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow else os.O_NOFOLLOW)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise linked(path) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise UnsafePath(f"{path}: not a regular file; refused")
    if info.st_size > limit:
        os.close(fd)
        raise TooLarge(f"{path}: {info.st_size:,} bytes, more than the {limit:,} aebench reads from such a file")
    return fd


def open_writable(path: Path, flags: int = 0) -> int:
    """A read-write descriptor of ``path`` (``flags`` added, e.g. ``os.O_APPEND``), created if missing, never
    through a link; a FIFO, a device or a file with another name (a hard link: writing would change a file
    elsewhere too) is refused with one line."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | flags, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise linked(path) from None
        raise
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
        os.close(fd)
        raise UnsafePath(f"{path}: not a plain file of its own (a device, FIFO or hard link); refused (remove it)")
    return fd


def open_binary(path: Path, limit: int, follow: bool = False) -> BinaryIO:
    """``open_regular`` as a binary file object (for readers that take one: numpy, torch, gzip, json)."""
    return os.fdopen(open_regular(path, limit, follow), "rb")


def read_bytes(path: Path, limit: int, follow: bool = False) -> bytes:
    """The bytes of the regular file ``path`` (not a link unless ``follow``), at most ``limit`` of them (else
    TooLarge)."""
    with open_binary(path, limit, follow) as fh:
        data = fh.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise TooLarge(f"{path}: more than the {limit:,} bytes aebench reads from such a file")
    return data


def read_text(path: Path, limit: int) -> str:
    """``read_bytes`` decoded as UTF-8 (undecodable bytes replaced)."""
    return read_bytes(path, limit).decode("utf-8", errors="replace")


def read_npz(path: Path, names: list[str], limit: int = NPZ_LIMIT) -> dict[str, np.ndarray]:
    """The named arrays of an ``.npz`` (never unpickled), after checking what each member declares: its size once
    unzipped and its array header, so a crafted file is refused (TooLarge) before anything is allocated.
    A damaged file raises what numpy and zipfile raise (``ValueError``, ``OSError``, ``zipfile.BadZipFile``)."""
    with open_binary(path, limit) as fh, zipfile.ZipFile(fh) as archive:
        members = {info.filename: info for info in archive.infolist()}
        infos = [members.get(f"{name}.npy") for name in names]
        missing = [name for name, info in zip(names, infos) if info is None]
        if missing:
            raise KeyError(f"{missing[0]} is not in the file")
        unzipped = sum(info.file_size for info in infos)
        if unzipped > limit:
            raise TooLarge(f"{path}: its arrays unzip to {unzipped:,} bytes, more than the {limit:,} aebench reads")
        arrays = {}
        for name, info in zip(names, infos):
            with archive.open(info) as member:
                declared = array_bytes(member)
            if declared > info.file_size:
                raise TooLarge(f"{path}: '{name}' declares {declared:,} bytes of data in {info.file_size:,}")
            with archive.open(info) as member:
                arrays[name] = np.lib.format.read_array(member, allow_pickle=False)
    return arrays


def open_zip(path: Path, limit: int, follow: bool = False) -> BinaryIO:
    """``open_binary`` for a zip archive (a torch checkpoint) whose members declare at most ``limit`` bytes once
    unzipped, checked before any reader allocates them; TooLarge otherwise, ``zipfile.BadZipFile`` for another
    format (torch's older, non-zip format allocates what its pickle declares, so it is not read)."""
    fh = open_binary(path, limit, follow)
    try:
        with zipfile.ZipFile(fh) as archive:
            unzipped = sum(info.file_size for info in archive.infolist())
        if unzipped > limit:
            raise TooLarge(f"{path}: its members unzip to {unzipped:,} bytes, more than the {limit:,} aebench reads")
        fh.seek(0)
    except BaseException:
        fh.close()
        raise
    return fh


def array_bytes(member: BinaryIO) -> int:
    """Bytes of data an ``.npy`` header declares (Python ints: no overflow)."""
    version = np.lib.format.read_magic(member)
    header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _, dtype = header(member)
    count = 1
    for side in shape:
        count *= int(side)
    return count * dtype.itemsize


# --------------------------------------------------------------------------- writing


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a fresh temporary file beside ``path``, fsync it, then rename it over ``path``.

    The temporary file is created by aebench (``O_EXCL``, a random name), so a link planted beside the target is
    never written through; a symbolic link or folder at ``path`` itself is refused. On any error the temporary
    file is removed and the error re-raised: ``path`` is either the old file or the complete new one.
    """
    if path.is_symlink() or path.is_dir():
        raise UnsafePath(f"{path}: a symbolic link or folder where aebench writes a file; refused (remove it)")
    fd, name = tempfile.mkstemp(prefix=f"{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; results are meant to be shared
        os.replace(tmp, path)  # replaces the name, never writes through a link at it
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes(path: Path, data: bytes) -> None:
    """Atomically write ``data``."""
    atomic_write(path, lambda tmp: tmp.write_bytes(data))


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8)."""
    write_bytes(path, text.encode("utf-8"))


def write_npz(path: Path, **arrays: Any) -> None:
    """Atomically write a compressed ``.npz`` of plain numeric arrays."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(path, write)


def writable_folder(path: Path, flag: str, keep: bool = True) -> Path:
    """Create ``path`` if needed and check a file can be written in it; a UserError naming ``flag`` otherwise.
    ``keep=False`` (a dry run): the same check, then the folders it created are removed again."""
    missing = [] if keep else [p for p in (path, *path.parents) if not os.path.lexists(p)]  # what it may create
    try:
        if path.exists() and not path.is_dir():
            raise UserError(f"{flag} {path}: exists and is not a folder (pass a folder)")
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".aebench-write-test-", dir=path)  # O_EXCL: never through a link
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write there ({exc.strerror}); pass a writable folder") from None
    finally:
        for created in missing:  # deepest first
            with contextlib.suppress(OSError):
                os.rmdir(created)
    return path


def results_folder_checks(out: Path, keep: bool = True) -> None:
    """``--out`` of a run: a folder that can be written (``writable_folder``) holding no symbolic link
    (``check_tree``); ``keep=False`` leaves no folder behind (a dry run)."""
    writable_folder(out, "--out", keep)
    check_tree(out)
