"""Wall-clock timing that waits for the device: every reported time goes through :func:`timed`."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (CUDA runs asynchronously; the CPU needs no wait)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass
class Timer:
    """Seconds elapsed in a :func:`timed` block, set when the block ends."""

    seconds: float = 0.0
    started: float = 0.0
    device: torch.device | None = None

    def elapsed(self) -> float:
        """Seconds since the block began, read now on the same synchronised clock (for budgets checked inside)."""
        if self.device is not None:
            synchronize(self.device)
        return time.perf_counter() - self.started


@contextmanager
def timed(device: torch.device) -> Iterator[Timer]:
    """Time the block on ``device``: synchronised before the clock starts and before it is read."""
    timer = Timer(device=device)
    synchronize(device)
    timer.started = time.perf_counter()
    try:
        yield timer
    finally:
        synchronize(device)
        timer.seconds = time.perf_counter() - timer.started
