"""Mixed precision: which dtype ``precision: auto`` means on this device, and the autocast context for it.

``auto`` is bf16 where the hardware computes it natively (a CUDA device with bf16, a CPU with AMX or
AVX512-BF16 — read from the processor's flags, not guessed) and fp32 elsewhere. Losses and metrics
are always computed in fp32; fp16 uses a gradient scaler.
"""

from __future__ import annotations

import contextlib
import functools
from contextlib import AbstractContextManager
from pathlib import Path

import torch

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
NATIVE_BF16_FLAGS = {"amx_bf16", "avx512_bf16"}


@functools.cache
def cpu_flags() -> frozenset[str]:
    """The processor's feature flags (Linux ``/proc/cpuinfo``; empty where unreadable)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` runs bf16 matrix work natively."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device.type == "cpu" and bool(NATIVE_BF16_FLAGS & cpu_flags())


def resolve_precision(name: str, device: torch.device) -> str:
    """The concrete precision (fp32 | bf16 | fp16) that ``name`` means on ``device``."""
    if name == "auto":
        return "bf16" if native_bf16(device) else "fp32"
    return name


def autocast(precision: str, device: torch.device) -> AbstractContextManager[None]:
    """Autocast to the precision's dtype on ``device``; a no-op for fp32."""
    dtype = DTYPES[precision]
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def grad_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A gradient scaler, enabled for fp16 only (bf16 has fp32's exponent range)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")
