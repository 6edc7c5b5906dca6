"""Writing files so that a fault of the machine (disk full, unwritable folder) leaves no partial file behind."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aebench.errors import UserError

# errors of the machine rather than of one cell: a sweep cannot go on, so they stop it with one line
TORCH_WRITE_FAILURES = ("No space left", "unexpected pos", "file write failed")  # torch.save's RuntimeError texts
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def is_machine_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a disk-full / read-only / permission / I/O error (also when wrapped by torch or numpy)."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
            return True
        if isinstance(exc, RuntimeError) and any(s in str(exc) for s in TORCH_WRITE_FAILURES):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    On any error the temporary file is removed and the error re-raised: ``path`` is either the old file or the
    complete new one, never a partial one.
    """
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # per process: parallel workers may write one path
    try:
        write(tmp)
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text(path: Path, text: str) -> None:
    """Atomically write ``text`` (UTF-8)."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_npz(path: Path, **arrays: Any) -> None:
    """Atomically write a compressed ``.npz`` of plain numeric arrays."""

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)

    atomic_write(path, write)


def writable_folder(path: Path, flag: str) -> Path:
    """Create ``path`` if needed and check a file can be written in it; a UserError naming ``flag`` otherwise."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path}: exists and is not a folder (pass a folder)")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".aebench-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise UserError(f"{flag} {path}: cannot write there ({exc.strerror}); pass a writable folder") from None
    return path


def fault_text(exc: BaseException) -> str:
    """One line for a machine fault: the OS's wording (e.g. 'No space left on device') when there is one."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.strerror:
            return exc.strerror
        if isinstance(exc, RuntimeError):  # torch's texts ("unexpected pos 7104 vs 7000") say little
            return "write failed (disk full or unwritable)"
        exc = exc.__cause__ or exc.__context__
    return "write failed"
