"""Optimizers, per-phase LR schedules, parameter groups and the LR range test (the study's way of choosing its LR)."""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

from aebench.config import TrainConfig
from aebench.training.recipe import Phase
from aebench.training.step import TrainStep


def make_optimizer(cfg: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """The optimizer named in the config over the given parameter groups: one fused kernel per step where every
    parameter is on a CUDA device, else PyTorch's default (multi-tensor ``foreach`` where it applies)."""
    params = [p for g in groups for p in g["params"]]
    fused = (bool(params) and all(p.is_cuda for p in params)) or None
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            groups, lr=groups[0]["lr"], momentum=cfg.momentum, weight_decay=cfg.weight_decay, fused=fused
        )
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=groups[0]["lr"], weight_decay=cfg.weight_decay, fused=fused)


def make_schedule(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-step schedule spanning one phase."""
    if cfg.schedule == "one_cycle":
        peaks = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=peaks, total_steps=max(steps_per_epoch * epochs, 1)
        )
    unit = steps_per_epoch if cfg.step_unit == "epoch" else 1  # the schedule is stepped once per batch
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size * unit, gamma=cfg.gamma)
    if cfg.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [m * unit for m in cfg.milestones], gamma=cfg.gamma)
    return None


def trainable_groups(model: nn.Module, phase: Phase, lr: float) -> list[dict]:
    """The phase's parameter groups; parameters outside them are frozen for the phase."""
    groups = phase.param_groups(model, lr) if phase.param_groups else [{"params": list(model.parameters()), "lr": lr}]
    chosen = {id(p) for g in groups for p in g["params"]}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    return [g for g in groups if g["params"]]


Batch = Callable[[], tuple[torch.Tensor, torch.Tensor]]


def lr_range_test(
    model: nn.Module,
    step: TrainStep,
    next_batch: Batch,
    make_optimizer: Callable[[list[dict]], torch.optim.Optimizer],
    steps: int = 100,
    lr_min: float = 1e-7,
    lr_max: float = 1.0,
) -> float:
    """Raise the LR exponentially over ``steps`` batches, each a training step as the run takes it (its precision,
    its compiled forward; a scaler of its own); return a tenth of the LR at the lowest smoothed loss. The model's
    weights are restored afterwards."""
    state = copy.deepcopy(model.state_dict())
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer([{"params": params, "lr": lr_min}])
    step = step.fresh()
    factor = (lr_max / lr_min) ** (1 / max(steps - 1, 1))
    best_loss, best_lr, avg = math.inf, lr_min, 0.0
    model.train()
    for number in range(steps):
        lr = lr_min * factor**number
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = step(optimizer, *next_batch()).item()  # the loss before this step's update
        if not math.isfinite(loss):
            break
        avg = 0.98 * avg + 0.02 * loss
        smoothed = avg / (1 - 0.98 ** (number + 1))
        if smoothed < best_loss:
            best_loss, best_lr = smoothed, lr
        elif smoothed > 4 * best_loss:
            break
    model.load_state_dict(state)
    return best_lr / 10
