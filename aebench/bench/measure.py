"""Measurements for ``aebench bench``: FLOPs per image and the device's matmul peak."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from aebench.training.precision import DTYPES
from aebench.training.timing import timed


def flops_per_image(step: Callable[[], None], batch_size: int) -> float:
    """Matmul and convolution FLOPs of one call of ``step`` (forward, loss and backward), per image."""
    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / batch_size


def matmul_peak_gflops(precision: str, device: torch.device, size: int = 2048, repeats: int = 5) -> float:
    """The device's peak measured on the spot: the best of ``repeats`` square matmuls in ``precision``."""
    dtype = DTYPES[precision] or torch.float32
    gen = torch.Generator(device=device).manual_seed(0)
    a, b = (torch.randn(size, size, generator=gen, device=device).to(dtype) for _ in range(2))
    a @ b  # warm-up (kernel selection, AMX tile set-up)
    best = float("inf")
    for _ in range(repeats):
        with timed(device) as timer:
            a @ b
        best = min(best, timer.seconds)
    return 2 * size**3 / best / 1e9
