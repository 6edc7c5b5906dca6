"""The one training loop every technique shares: phases, optimizer, schedule, timing, history."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator

import torch
from torch import nn
from tqdm.auto import tqdm

from aebench.config import CellConfig, TrainConfig
from aebench.losses import pixel_loss
from aebench.lr_finder import lr_range_test
from aebench.pixels import Normalizer, make_batch, to_float
from aebench.techniques.registry import LabelledImages, Loss, Phase, Recipe

EVAL_SEED = 1234  # corrupted evaluation inputs are identical for every technique and seed
EpochHook = Callable[[int, nn.Module], None]


@dataclass
class Splits:
    """uint8 image tensors on the training device."""

    train: torch.Tensor
    test: torch.Tensor
    val: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None  # needed only by recipes with a ``prepare`` step
    num_classes: int = 0


@dataclass
class TrainOutcome:
    """What training produced besides the weights."""

    history: list[dict[str, float | int | str | None]] = field(default_factory=list)
    train_seconds: float = 0.0
    images_seen: int = 0
    lr: float | None = None
    best_epoch: int | None = None


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_optimizer(cfg: TrainConfig, groups: list[dict]) -> torch.optim.Optimizer:
    """The optimizer named in the config over the given parameter groups."""
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    cls = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
    return cls(groups, lr=groups[0]["lr"], weight_decay=cfg.weight_decay)


def make_schedule(
    cfg: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int
) -> torch.optim.lr_scheduler.LRScheduler | None:
    """A per-step schedule spanning one phase."""
    if cfg.schedule == "one_cycle":
        peaks = [g["lr"] for g in optimizer.param_groups]
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=peaks, total_steps=max(steps_per_epoch * epochs, 1))
    unit = steps_per_epoch if cfg.step_unit == "epoch" else 1  # the schedule is stepped once per batch
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size * unit, gamma=cfg.gamma)
    if cfg.schedule == "multistep":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, [m * unit for m in cfg.milestones], gamma=cfg.gamma)
    return None


def batch_starts(n: int, batch_size: int) -> list[int]:
    """Batch start offsets; a trailing batch of one image is dropped (BatchNorm needs two)."""
    return [i for i in range(0, n, batch_size) if min(batch_size, n - i) > 1]


def channels_last(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x


def eval_batches(
    images: torch.Tensor, cfg: CellConfig, normalizer: Normalizer, size: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(normalised corrupted input, clean target) batches in order, with the fixed evaluation noise."""
    gen = torch.Generator(device=images.device).manual_seed(EVAL_SEED)
    for start in range(0, len(images), cfg.train.batch_size):
        inputs, target = make_batch(images[start : start + cfg.train.batch_size], cfg.data, gen, train=False, size=size)
        yield channels_last(normalizer(inputs)), target


@torch.no_grad()
def mean_loss(model: nn.Module, images: torch.Tensor, cfg: CellConfig, normalizer: Normalizer, loss_fn: Loss, size: int | None) -> float:
    """Image-weighted mean loss over a split, in eval mode."""
    model.eval()
    total = 0.0
    for inputs, target in eval_batches(images, cfg, normalizer, size):
        total += loss_fn(model(inputs), target).item() * len(target)
    return total / len(images)


def trainable_groups(model: nn.Module, phase: Phase, lr: float) -> list[dict]:
    """The phase's parameter groups; parameters outside them are frozen for the phase."""
    groups = phase.param_groups(model, lr) if phase.param_groups else [{"params": list(model.parameters()), "lr": lr}]
    chosen = {id(p) for g in groups for p in g["params"]}
    for p in model.parameters():
        p.requires_grad_(id(p) in chosen)
    return [g for g in groups if g["params"]]


def train(
    recipe: Recipe,
    splits: Splits,
    cfg: CellConfig,
    normalizer: Normalizer,
    desc: str = "",
    on_epoch_end: EpochHook | None = None,
) -> TrainOutcome:
    """Fit the recipe's model in place; returns history and timing. Deterministic for a given seed on CPU."""
    model, device = recipe.model, splits.train.device
    forward = torch.compile(model) if cfg.train.compile else model  # shares the model's parameters
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    loss_fn = recipe.loss or pixel_loss(cfg.train.loss)
    if isinstance(loss_fn, nn.Module):  # e.g. a feature loss holding a network
        loss_fn.to(device)
    outcome = TrainOutcome()
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)

    if recipe.fit is not None:
        start = time.perf_counter()
        recipe.fit(to_float(splits.train), cfg.seed)
        synchronize(device)
        outcome.train_seconds += time.perf_counter() - start
        outcome.images_seen += len(splits.train)

    if recipe.prepare is not None:
        if splits.train_labels is None:
            raise ValueError("this technique's prepare step needs the training labels (Splits.train_labels)")
        start = time.perf_counter()
        recipe.prepare(LabelledImages(splits.train, splits.train_labels, splits.num_classes), cfg.seed)
        synchronize(device)
        outcome.train_seconds += time.perf_counter() - start

    def next_batch(size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        idx = torch.randint(len(splits.train), (cfg.train.batch_size,), generator=gen, device=device)
        inputs, target = make_batch(splits.train[idx], cfg.data, gen, train=True, size=size)
        return channels_last(normalizer(inputs)), target

    if recipe.phases:
        if cfg.train.lr == "auto":
            start = time.perf_counter()
            outcome.lr = lr_range_test(model, loss_fn, next_batch, lambda g: make_optimizer(cfg.train, g))
            outcome.train_seconds += time.perf_counter() - start
        else:
            outcome.lr = float(cfg.train.lr)

    best_state, best_val = None, math.inf
    epoch = 0
    for phase in recipe.phases:
        groups = trainable_groups(model, phase, outcome.lr)
        optimizer = make_optimizer(cfg.train, groups)
        starts = batch_starts(len(splits.train), cfg.train.batch_size)
        schedule = make_schedule(cfg.train, optimizer, len(starts), phase.epochs)
        for _ in range(phase.epochs):
            epoch += 1
            model.train()
            synchronize(device)
            start = time.perf_counter()
            perm = torch.randperm(len(splits.train), generator=gen, device=device)
            total, seen = 0.0, 0
            bar = tqdm(starts, desc=f"{desc} {phase.name} ep {epoch}/{cfg.train.epochs}", leave=False, disable=None)
            for i in bar:
                inputs, target = make_batch(splits.train[perm[i : i + cfg.train.batch_size]], cfg.data, gen, True, phase.image_size)
                loss = loss_fn(forward(channels_last(normalizer(inputs))), target)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if schedule is not None:
                    schedule.step()
                total += loss.item() * len(target)
                seen += len(target)
                bar.set_postfix(loss=f"{total / seen:.4g}", refresh=False)
            synchronize(device)
            seconds = time.perf_counter() - start
            outcome.train_seconds += seconds
            outcome.images_seen += seen
            record = {
                "epoch": epoch,
                "phase": phase.name,
                "lr": optimizer.param_groups[-1]["lr"],
                "train_loss": total / max(seen, 1),
                "test_loss": mean_loss(model, splits.test, cfg, normalizer, loss_fn, phase.image_size),
                "seconds": seconds,
            }
            if splits.val is not None:
                record["val_loss"] = mean_loss(model, splits.val, cfg, normalizer, loss_fn, phase.image_size)
                if record["val_loss"] < best_val:
                    best_val, outcome.best_epoch = record["val_loss"], epoch
                    best_state = copy.deepcopy(model.state_dict())
            outcome.history.append(record)
            if on_epoch_end is not None:
                on_epoch_end(epoch, model)
    for p in model.parameters():
        p.requires_grad_(True)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    return outcome
