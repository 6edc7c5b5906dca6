"""Batches by index from resident uint8 tensors: offsets, memory format, and the fixed evaluation batches."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from aebench.config import CellConfig
from aebench.data.pixels import Normalizer, make_batch

EVAL_SEED = 1234  # corrupted evaluation inputs are identical for every technique and seed
EVAL_BATCH_SIZE = 1024  # no-grad passes hold no activations for backward: large batches, fewer dispatches


def batch_starts(n: int, batch_size: int, drop_last: bool = False) -> list[int]:
    """Batch start offsets; a trailing batch of one image is dropped (BatchNorm needs two), any partial one with
    ``drop_last``."""
    smallest = batch_size if drop_last else 2
    return [i for i in range(0, n, batch_size) if min(batch_size, n - i) >= smallest]


def eval_batches(
    images: torch.Tensor, cfg: CellConfig, normalizer: Normalizer, size: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(normalised corrupted input, clean target) batches of ``EVAL_BATCH_SIZE`` in order, with the fixed
    evaluation noise (independent of the training batch size)."""
    gen = torch.Generator(device=images.device).manual_seed(EVAL_SEED)
    for start in range(0, len(images), EVAL_BATCH_SIZE):
        inputs, target = make_batch(images[start : start + EVAL_BATCH_SIZE], cfg.data, gen, train=False, size=size)
        yield normalizer(inputs), target
