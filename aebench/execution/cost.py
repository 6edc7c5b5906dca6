"""The controlled cost measurement: each technique's training step timed against the baseline's in this process
(``timer.py``: interleaved, warm-up excluded, to a CI target or a cap), same device, threads and step mode (eager),
each cell's precision, phase by phase weighted by the phase's epochs; a closed-form fit and a one-off preparation
(a trained loss network) timed once, as what they are. ``aebench run`` ends with it, ``aebench bench --cost`` runs
it on demand. The record (``results/cost.py``) is kept while the machine and the cells' recipes stay the same."""

from __future__ import annotations

import dataclasses
import logging
import platform
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.data.pixels import to_float
from aebench.errors import SkipCell, UserError
from aebench.execution.timer import Step, TimerSettings, compare
from aebench.experiment import ExperimentConfig
from aebench.results.cost import read_cost, write_cost
from aebench.techniques import TECHNIQUES, build_recipe
from aebench.training.loop import Run, Splits, start_run
from aebench.training.precision import NATIVE_BF16_FLAGS, cpu_flags
from aebench.training.recipe import BuildContext, LabelledImages
from aebench.training.timing import timed

log = logging.getLogger(__name__)
SHOWN_FLAGS = ("avx2", "avx512f", *sorted(NATIVE_BF16_FLAGS))  # the CPU flags that decide a step's speed
BASELINE = next(name for name, info in TECHNIQUES.items() if info.role == "baseline")
STEP_MODE = "eager"  # every side of the measurement: no compile choice enters a ratio


@dataclass(frozen=True)
class CostSettings:
    """How each technique is measured: the timer's stopping rule (its cap: seconds per technique), the training
    images the steps draw from (the fit and the one-off run on them too) and the intra-op threads of both sides.

    One thread by default: a ratio needs no more, a CPU ``auto`` run trains its cells single-threaded side by side,
    and a multi-threaded step on a shared machine waits for its slowest thread (the MNIST baseline's step took
    5.3 s with 2 threads and 0.24 s with 1 on the shared 2-core EPYC of the README)."""

    timer: TimerSettings = TimerSettings()
    images: int = 4096
    threads: int | None = 1  # None: this process's


DEFAULT_COST = CostSettings()  # what ``aebench run`` measures with


def device_name(device: torch.device) -> str:
    """The device in words: the GPU's name, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def machine(device: torch.device, threads: int) -> dict[str, Any]:
    """What a cost ratio was measured on (with ``threads``); a record measured on another is measured again."""
    flags = [f for f in SHOWN_FLAGS if f in cpu_flags()] if device.type == "cpu" else []
    return {
        "device": device.type,
        "name": device_name(device),
        "flags": flags,
        "torch": torch.__version__,
        "threads": threads,
    }


@contextmanager
def torch_threads(count: int | None) -> Iterator[int]:
    """Torch's intra-op threads set to ``count`` (None: left) for the block; yields the count in force."""
    before = torch.get_num_threads()
    torch.set_num_threads(count or before)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def timing_run(cell: CellConfig, cache: DatasetCache, device: torch.device, images: int, test_images: int = 0) -> Run:
    """The cell's run started eager on ``images`` training images (with their labels) and ``test_images`` test
    images on ``device``, its weights drawn from the cell's seed; a SkipCell or UserError when it cannot be built
    here (weights offline, images it does not fit)."""
    data = cache.prepared(cell.source, dataclasses.replace(cell.data, limit_train=images)).to(device)
    cell = dataclasses.replace(cell, train=dataclasses.replace(cell.train, compile=False))
    ctx = BuildContext.for_cell(cell, data.x_train)
    recipe = build_recipe(cell.technique, ctx, cell.seed)
    recipe.model.to(device)
    splits = Splits(data.x_train, data.x_test[:test_images], None, data.y_train, data.num_classes)
    return start_run(recipe, splits, cell, ctx.normalizer(device), "timing", None)


def timing_lr(cell: CellConfig) -> float:
    """The constant LR a timed step takes: the configured one (``lr: auto``'s range test is not what is timed)."""
    return float(cell.train.lr) if cell.train.lr != "auto" else 1e-3


def step_entry(run: Run, baseline: Step, settings: TimerSettings, device: torch.device) -> dict[str, Any]:
    """The step's cost against ``baseline``, phase by phase (each its share of the cap), weighted by epochs."""
    phases = [phase for phase in run.recipe.phases if phase.epochs > 0]
    total = sum(phase.epochs for phase in phases)
    parts = []
    for phase in phases:
        one = dataclasses.replace(run, recipe=dataclasses.replace(run.recipe, phases=[phase]))
        cap = dataclasses.replace(settings, max_seconds=settings.max_seconds * phase.epochs / total)
        measured = compare(baseline, one.free_step(timing_lr(run.cfg)), cap, device).record()
        parts.append({"phase": phase.name, "epochs": phase.epochs, **measured})
    numbers = ("ratio", "ci_low", "ci_high", "seconds_per_step", "baseline_seconds_per_step")
    entry = {key: sum(p[key] * p["epochs"] / total for p in parts) for key in numbers}
    entry.update(kind="step", pairs=sum(p["pairs"] for p in parts), precision=run.step.precision)
    entry["stopped"] = "cap" if any(p["stopped"] == "cap" for p in parts) else "ci"
    return {**entry, "phases": parts} if len(parts) > 1 else entry


def once(kind: str, action: Callable[[], object], device: torch.device, images: int) -> dict[str, Any]:
    """A fit or a one-off timed once, as what it is."""
    with timed(device) as timer:
        action()
    return {"kind": kind, "seconds": timer.seconds, "images": images}


def technique_entries(
    cell: CellConfig, baseline: Step, cache: DatasetCache, device: torch.device, settings: CostSettings
) -> list[dict[str, Any]]:
    """A technique's measured entries: its one-off, its fit, its step (whichever it has)."""
    run = timing_run(cell, cache, device, settings.images)
    recipe, train = run.recipe, run.splits.train
    entries = []
    if recipe.prepare is not None:
        labelled = LabelledImages(train, run.splits.train_labels, run.splits.num_classes)
        entries.append(once("one-off", lambda: recipe.prepare(labelled, cell.seed), device, len(train)))
    if recipe.fit is not None:
        entries.append(once("fit", lambda: recipe.fit(to_float(train), cell.seed), device, len(train)))
    if any(phase.epochs > 0 for phase in recipe.phases):
        entries.append(step_entry(run, baseline, settings.timer, device))
    return [{"dataset": cell.dataset, "technique": cell.technique, **e} for e in entries]


def recipes(config: ExperimentConfig) -> dict[str, str]:
    """``dataset/technique`` -> recipe hash of every measured cell (the baseline's included): what the record is of."""
    seed = config.seeds[0]
    return {
        f"{dataset}/{technique}": config.cell(dataset, technique, seed).recipe_hash
        for dataset in config.datasets
        for technique in dict.fromkeys([BASELINE, *config.techniques])
    }


def measure_costs(
    config: ExperimentConfig, data_root: Path, device: torch.device, settings: CostSettings
) -> dict[str, Any]:
    """The cost record of every technique of ``config`` (first seed) on each dataset, the baseline against a
    second copy of itself (the instrument's own check: its ratio is 1 within its CI)."""
    with torch_threads(settings.threads) as threads:
        entries, skipped = measure_entries(config, DatasetCache(data_root), device, settings)
    return {
        "machine": machine(device, threads),
        "conditions": {
            "step_mode": STEP_MODE,
            "baseline": BASELINE,
            "seed": config.seeds[0],
            **dataclasses.asdict(settings),
        },
        "recipes": recipes(config),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "entries": entries,
        "skipped": skipped,
    }


def measure_entries(
    config: ExperimentConfig, cache: DatasetCache, device: torch.device, settings: CostSettings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every measured entry of ``config``'s techniques on each dataset, and the techniques that could not run."""
    entries, skipped = [], []
    for dataset in config.datasets:
        reference = config.cell(dataset, BASELINE, config.seeds[0])
        baseline = timing_run(reference, cache, device, settings.images).free_step(timing_lr(reference))
        for technique in config.techniques:
            log.info("cost: %s / %s against %s", dataset, technique, BASELINE)
            try:
                cell = config.cell(dataset, technique, config.seeds[0])
                entries += technique_entries(cell, baseline, cache, device, settings)
            except (SkipCell, UserError) as exc:
                skipped.append({"dataset": dataset, "technique": technique, "reason": str(exc)})
    return entries, skipped


def record_cost(
    config: ExperimentConfig, out: Path, data_root: Path, device: torch.device, settings: CostSettings
) -> dict[str, Any]:
    """``out/cost.json``: kept where it holds these recipes measured on this machine, measured (again) otherwise."""
    old, here = read_cost(out), machine(device, settings.threads or torch.get_num_threads())
    if old is not None and old.get("machine") == here and old.get("recipes") == recipes(config):
        log.info("cost: %s measured these techniques on this machine; kept", out / "cost.json")
        return old
    record = measure_costs(config, data_root, device, settings)
    write_cost(out, record)
    return record
