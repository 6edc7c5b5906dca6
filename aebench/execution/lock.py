"""One writer per results folder: an exclusive lock held for the whole ``aebench run``, naming its holder."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from aebench.errors import UserError

LOCK_FILE = ".aebench.lock"


@contextmanager
def results_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock; a second run on the same folder gets a UserError naming the holder.

    The lock is the kernel's (``flock``), so a killed run releases it at once; the file only says who holds it.
    """
    path = folder / LOCK_FILE
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "another process"
            raise UserError(
                f"{folder} is in use by another aebench run ({holder}): wait for it to finish or pass another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield
    finally:
        os.close(fd)
