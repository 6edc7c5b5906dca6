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
    return cls(groups, lr=groups[0]["lr"], betas=cfg.betas, weight_decay=cfg.weight_decay, fused=fused)


def annealing_cos(start: float, end: float, fraction: float) -> float:
    """Cosine from ``start`` (fraction 0) to ``end`` (fraction 1), as fastai's ``annealing_cos``."""
    return end + (start - end) / 2 * (math.cos(math.pi * fraction) + 1)


class OneCycles(torch.optim.lr_scheduler.LRScheduler):
    """fastai v1's ``fit_one_cycle`` once per cycle, back to back on one optimizer (its state kept).

    Each cycle of ``steps`` optimizer steps with per-group ``peaks``: the LR rises from peak/25 to the peak over
    the first 30 % of the steps and falls to peak/(25 * 1e4) over the rest, both by cosine, while the momentum
    (beta1, or SGD's momentum) falls from 0.95 to 0.85 and rises back. Step ``k`` of a cycle uses fastai's
    values: the start at k = 0, then the schedule at k / warm-up steps.
    """

    def __init__(
        self, optimizer: torch.optim.Optimizer, cycles: list[tuple[int, list[float]]], pct_start: float = 0.3
    ) -> None:
        self.cycles = [(max(int(steps), 1), [float(p) for p in peaks]) for steps, peaks in cycles]
        self.pct_start = pct_start
        super().__init__(optimizer)

    def position(self) -> tuple[int, int, list[float]]:
        """(step within the cycle, the cycle's steps, its peaks) at the current step; the last cycle's end past it."""
        step = self.last_epoch
        for steps, peaks in self.cycles:
            if step < steps:
                return step, steps, peaks
            step -= steps
        steps, peaks = self.cycles[-1]
        return steps - 1, steps, peaks

    def get_lr(self) -> list[float]:
        step, steps, peaks = self.position()
        warm = int(steps * self.pct_start)
        if step <= warm and warm > 0:
            fraction, lr_ends, mom_ends = step / warm, (1 / 25, 1.0), (0.95, 0.85)
        else:
            fraction, lr_ends, mom_ends = (step - warm) / max(steps - warm, 1), (1.0, 1 / 25e4), (0.85, 0.95)
        momentum = annealing_cos(*mom_ends, fraction)
        for group in self.optimizer.param_groups:
            if "betas" in group:
                group["betas"] = (momentum, group["betas"][1])
            else:
                group["momentum"] = momentum
        return [peak * annealing_cos(*lr_ends, fraction) for peak in peaks]


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


def phase_groups(model: nn.Module, phase: Phase, lr: float) -> list[dict]:
    """The phase's non-empty parameter groups at base LR ``lr`` (every parameter at ``lr`` by default)."""
    groups = phase.param_groups(model, lr) if phase.param_groups else [{"params": list(model.parameters()), "lr": lr}]
    return [g for g in groups if g["params"]]


def trainable_groups(model: nn.Module, phase: Phase, lr: float) -> list[dict]:
    """The phase's parameter groups; parameters outside them are frozen for the phase."""
    groups = phase_groups(model, phase, lr)
    chosen = {id(p) for g in groups for p in g["params"]}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    return groups


def same_parameters(optimizer: torch.optim.Optimizer, groups: list[dict]) -> bool:
    """Whether ``groups`` hold the optimizer's parameters in its group structure (so its state carries over)."""

    def ids(gs: list[dict]) -> list[list[int]]:
        return [[id(p) for p in g["params"]] for g in gs]

    return ids(optimizer.param_groups) == ids(groups)


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
