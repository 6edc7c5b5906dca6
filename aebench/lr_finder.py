"""LR range test (Smith 2015, as fastai's ``lr_find``): the study's way of choosing its LR."""

from __future__ import annotations

import copy
import math
from typing import Callable

import torch
from torch import nn

from aebench.techniques.registry import Loss

Batch = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def lr_range_test(
    model: nn.Module,
    loss_fn: Loss,
    next_batch: Batch,
    make_optimizer: Callable[[list[dict]], torch.optim.Optimizer],
    steps: int = 100,
    lr_min: float = 1e-7,
    lr_max: float = 1.0,
) -> float:
    """Raise the LR exponentially over ``steps`` batches; return a tenth of the LR at the lowest
    smoothed loss. The model's weights are restored afterwards."""
    state = copy.deepcopy(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer([{"params": params, "lr": lr_min}])
    factor = (lr_max / lr_min) ** (1 / max(steps - 1, 1))
    best_loss, best_lr, avg = math.inf, lr_min, 0.0
    model.train()
    for step in range(steps):
        lr = lr_min * factor**step
        for group in optimizer.param_groups:
            group["lr"] = lr
        inputs, target = next_batch()
        loss = loss_fn(model(inputs), target)
        if not torch.isfinite(loss):
            break
        avg = 0.98 * avg + 0.02 * loss.item()
        smoothed = avg / (1 - 0.98 ** (step + 1))
        if smoothed < best_loss:
            best_loss, best_lr = smoothed, lr
        elif smoothed > 4 * best_loss:
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    model.load_state_dict(state)
    return best_lr / 10
