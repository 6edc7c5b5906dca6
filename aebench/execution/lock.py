"""One writer per results folder: an exclusive lock held for the whole ``aebench run``, naming its holder."""

from __future__ import annotations

import fcntl
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from aebench.errors import UserError
from aebench.files import open_writable, read_bytes

LOCK_FILE = ".aebench.lock"


@contextmanager
def results_lock(folder: Path) -> Iterator[None]:
    """Hold ``folder``'s lock; a second run on the same folder gets a UserError naming the holder.

    The lock is the kernel's (``flock``) on the folder itself, so deleting or replacing the lock file admits no
    second writer, and a killed run releases it at once. The file ``.aebench.lock`` only says who holds it (it is
    flocked too, which older aebench versions check); a link, FIFO or hard link there is refused.
    """
    with ExitStack() as stack:
        folder_fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        stack.callback(os.close, folder_fd)
        if not try_lock(folder_fd):
            raise busy(folder, holder(folder / LOCK_FILE))
        fd = open_writable(folder / LOCK_FILE)  # never through a link
        stack.callback(os.close, fd)
        if not try_lock(fd):  # a run of an older aebench, which locks only the file
            raise busy(folder, holder(folder / LOCK_FILE))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()} since {time.strftime('%H:%M:%S')}".encode(), 0)
        yield


def try_lock(fd: int) -> bool:
    """Take the exclusive flock on ``fd`` without waiting; False when another open file holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder(path: Path) -> str:
    """What the lock file says about its holder (never read through a link), or 'another process'."""
    try:
        text = read_bytes(path, 4096).decode("utf-8", "replace").strip()
    except (UserError, OSError):
        text = ""
    return text.splitlines()[0] if text else "another process"


def busy(folder: Path, who: str) -> UserError:
    return UserError(f"{folder} is in use by another aebench run ({who}): wait for it to finish or pass another --out")
