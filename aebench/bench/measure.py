"""Measurements for ``aebench bench``: FLOPs per image, the device's matmul peak and throughput."""

from __future__ import annotations

import statistics
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


def images_per_second(step: Callable[[], None], steps: int, batch_size: int, device: torch.device) -> float:
    """Throughput of ``steps`` calls of ``step``, timed with the device synchronised."""
    with timed(device) as timer:
        for _ in range(steps):
            step()
    return steps * batch_size / timer.seconds


def interleaved_medians(
    steps: dict[str, Callable[[], None]], n: int, repeats: int, batch_size: int, device: torch.device
) -> dict[str, float]:
    """Median img/s of each named step over ``repeats`` rounds; the rounds alternate the steps so that
    contention on a shared machine hits them alike. One untimed warm-up round (``n`` steps of each) comes first."""
    for step in steps.values():
        images_per_second(step, n, batch_size, device)
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            rates[name].append(images_per_second(step, n, batch_size, device))
    return {name: statistics.median(values) for name, values in rates.items()}


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
