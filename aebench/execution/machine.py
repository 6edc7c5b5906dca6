"""What this machine offers right now: usable cores, their load from other processes, available memory.

Torch-free (worker processes read it before torch loads). Linux files where they exist, portable fallbacks else.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

LOADAVG = Path("/proc/loadavg")
MEMINFO = Path("/proc/meminfo")


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. a container's or ``taskset``'s share)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        return os.cpu_count() or 1


def runnable_now(samples: int = 10, interval: float = 0.05) -> float:
    """Threads running or ready to run, machine-wide, averaged over ``samples`` readings (``/proc/loadavg``'s
    instantaneous count, which includes the reader); the 1-minute load average where that file is missing."""
    counts = []
    for index in range(samples):
        try:
            counts.append(int(LOADAVG.read_text().split()[3].split("/")[0]))
        except (OSError, IndexError, ValueError):
            return os.getloadavg()[0] + 1.0 if hasattr(os, "getloadavg") else 1.0
        if index + 1 < samples:
            time.sleep(interval)
    return sum(counts) / len(counts)


def available_memory_mb() -> float | None:
    """Memory available for new processes without swapping (Linux ``MemAvailable``); None where unknown."""
    try:
        for line in MEMINFO.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@dataclass(frozen=True)
class Machine:
    """A snapshot of the CPU side of this machine, taken when a run plans its cells."""

    cores: int  # usable by this process
    busy: float  # cores kept busy by other processes (runnable threads besides this one)
    memory_mb: float | None  # available

    @classmethod
    def read(cls, own_threads: int = 1, samples: int = 10) -> Machine:
        """The machine now; ``own_threads``: runnable threads of this run itself, left out of ``busy``."""
        busy = max(0.0, runnable_now(samples) - own_threads)
        return cls(usable_cores(), busy, available_memory_mb())

    @property
    def free_cores(self) -> int:
        """Cores not kept busy by others, at least one."""
        return max(1, self.cores - round(self.busy))

    def describe(self) -> str:
        memory = f", {self.memory_mb / 1024:.1f} GB memory available" if self.memory_mb is not None else ""
        return f"{self.cores} cores, {self.busy:.1f} kept busy by other processes{memory}"
