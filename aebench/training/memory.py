"""Peak memory of a stretch of work: CUDA's allocator statistics, or the process's peak resident set on CPU."""

from __future__ import annotations

import contextlib
import platform
import resource
from pathlib import Path

import torch

CLEAR_REFS = Path("/proc/self/clear_refs")


def reset_peak_memory(device: torch.device) -> None:
    """Start a new peak: CUDA's allocator statistics, or Linux's peak resident set (``clear_refs`` 5)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    with contextlib.suppress(OSError):  # elsewhere the peak is the process's since it started (peak_memory_mb)
        CLEAR_REFS.write_text("5")


def peak_memory_mb(device: torch.device) -> float:
    """CUDA max allocated since the last reset; on CPU the peak resident set (Linux ``VmHWM``, reset by
    :func:`reset_peak_memory`; elsewhere ``ru_maxrss``, the process's peak)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kb / 1024 if platform.system() != "Darwin" else kb / 2**20
