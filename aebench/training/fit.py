"""Supervised fitting of a classifier network (the downstream classifier, a trained feature-loss network)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from aebench.config import TrainConfig
from aebench.training.batches import batch_starts
from aebench.training.optim import make_optimizer, make_schedule
from aebench.training.step import TrainStep

log = logging.getLogger(__name__)


def fit_classifier(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    inputs: Callable[[torch.Tensor], torch.Tensor],
    desc: str = "classifier",
    precision: str = "fp32",
) -> None:
    """Train ``model`` in place with cross-entropy on uint8 images ``x`` (``inputs`` maps a uint8 batch to
    the model's input), one-cycle Adam, seeded, forward under ``precision``'s autocast; leaves it in eval mode."""
    torch.manual_seed(seed)
    gen = torch.Generator(device=x.device).manual_seed(seed)
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, optimizer="adam", schedule="one_cycle")
    optimizer = make_optimizer(cfg, [{"params": list(model.parameters()), "lr": lr}])
    starts = batch_starts(len(x), batch_size)
    schedule = make_schedule(cfg, optimizer, len(starts), epochs)
    step = TrainStep.create(model, F.cross_entropy, precision, x.device)
    model.train()
    start = time.perf_counter()
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=gen, device=x.device)
        for i in tqdm(starts, desc=f"{desc} ep {epoch + 1}/{epochs}", leave=False, disable=None):
            idx = perm[i : i + batch_size]
            step(optimizer, inputs(x[idx]), y[idx], schedule)
        spent = time.perf_counter() - start
        log.info(
            "%s: epoch %d/%d, %.0f s, ~%.0f s left",
            desc,
            epoch + 1,
            epochs,
            spent,
            spent / (epoch + 1) * (epochs - epoch - 1),
        )
    model.eval()
