"""Writing files so that a fault of the machine (disk full, unwritable folder) leaves no partial file behind."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

# errors of the machine rather than of one cell: a sweep cannot go on, so they stop it with one line
MACHINE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}


def is_machine_fault(exc: BaseException) -> bool:
    """Whether ``exc`` is a disk-full / read-only / permission / I/O error (also when wrapped by torch or numpy)."""
    while exc is not None:
        if isinstance(exc, OSError) and exc.errno in MACHINE_ERRNOS:
            return True
        if isinstance(exc, RuntimeError) and any(s in str(exc) for s in ("No space left", "unexpected pos")):
            return True  # torch.save reports a failed write as a RuntimeError
        exc = exc.__cause__ or exc.__context__
    return False


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, fsync it, then rename it over ``path``.

    On any error the temporary file is removed and the error re-raised: ``path`` is either the old file or the
    complete new one, never a partial one.
    """
    tmp = path.with_name(path.name + ".tmp")
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
