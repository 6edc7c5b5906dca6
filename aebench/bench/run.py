"""``aebench bench``: per technique, aebench's training step and the naive loop side by side in one process.

Same model (same initial weights), same images, same batch size; timed by the interleaved timer
(``execution/timer.py``): img/s of each and the speed-up with its 95 % CI; FLOPs per image, achieved GFLOP/s and
its fraction of a matmul peak measured on the spot in the step's precision; no-grad evaluation throughput; peak
memory.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aebench.bench.measure import flops_per_image, matmul_peak_gflops
from aebench.bench.naive import NaiveLoop, TutorialImages
from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.data.pixels import Normalizer
from aebench.data.registry import subset
from aebench.errors import SkipCell, UserError
from aebench.execution.cost import device_name, timing_lr, timing_run
from aebench.execution.timer import TimerSettings, compare, round_seconds
from aebench.experiment import ExperimentConfig
from aebench.training.batches import eval_batches
from aebench.training.memory import peak_memory_mb, reset_peak_memory
from aebench.training.precision import autocast

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchSettings:
    """How each side is timed, on how many images."""

    timer: TimerSettings = TimerSettings()
    images: int = 4096  # training images both loops draw from
    eval_images: int = 2048  # images for the evaluation throughput


@dataclass
class BenchRow:
    """One technique's numbers (``status`` skipped with a ``reason`` when it has no gradient step to time)."""

    technique: str
    status: str = "ok"
    reason: str = ""
    precision: str | None = None
    params: int | None = None
    gflops_per_image: float | None = None
    aebench_img_s: float | None = None
    naive_img_s: float | None = None
    speedup: float | None = None  # the naive loop's step time over aebench's, with its 95 % CI
    speedup_low: float | None = None
    speedup_high: float | None = None
    pairs: int | None = None
    achieved_gflop_s: float | None = None
    peak_fraction: float | None = None
    eval_img_s: float | None = None
    peak_memory_mb: float | None = None


def bench_experiment(
    config: ExperimentConfig, data_root: Path, device: torch.device, settings: BenchSettings
) -> dict[str, Any]:
    """Bench every technique of ``config`` on its first dataset (seed of the first cell); returns the report. The
    dataset must be at hand (a UserError as in the run otherwise); a technique that cannot run here is a skipped row."""
    cache = DatasetCache(data_root)
    dataset = config.datasets[0]
    cache.raw(dataset)  # a dataset not at hand stops the bench with the run's one-line UserError, not a skipped row
    rows, peaks = [], {}
    for technique in config.techniques:
        cell = config.cell(dataset, technique, config.seeds[0])
        log.info("bench %s / %s", dataset, technique)
        row = bench_cell(cell, cache, device, settings, peaks)
        rows.append(row)
    return {
        "dataset": dataset,
        "device": device_name(device),
        "torch_version": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": config.train.batch_size,
        "settings": dataclasses.asdict(settings),
        "peak_gflop_s": peaks,
        "rows": [dataclasses.asdict(r) for r in rows],
    }


def bench_cell(
    cell: CellConfig, cache: DatasetCache, device: torch.device, settings: BenchSettings, peaks: dict[str, float]
) -> BenchRow:
    """The numbers of one technique; a technique that cannot be built or has no gradient step is skipped."""
    row = BenchRow(cell.technique)
    try:
        run = timing_run(cell, cache, device, settings.images, settings.eval_images)
        if not run.recipe.phases:
            raise SkipCell("no gradient steps (a closed-form fit)")
    except (SkipCell, UserError) as exc:  # weights not at hand, or a technique that does not fit these images
        return dataclasses.replace(row, status="skipped", reason=str(exc))
    recipe, normalizer = run.recipe, run.normalizer
    naive_model = copy.deepcopy(recipe.model)
    reset_peak_memory(device)
    lr = timing_lr(cell)
    aebench_step = run.free_step(lr)
    raw = cache.raw(cell.source)  # the same images at their stored size: the tutorial resizes them per sample
    size, channels = run.splits.train.shape[-1], run.splits.train.shape[1]
    tutorial = TutorialImages(subset(raw.x_train, raw.y_train, settings.images)[0], size, channels)
    naive = NaiveLoop(naive_model, run.step.loss_fn, tutorial, cell.train.batch_size, lr, normalizer)
    batch = cell.train.batch_size
    timing = compare(naive.step, aebench_step, settings.timer, device).record()  # aebench's over the naive time
    flops = flops_per_image(aebench_step, batch)
    precision = run.step.precision
    if precision not in peaks:
        peaks[precision] = matmul_peak_gflops(precision, device)
    rate = batch / timing["seconds_per_step"]
    return dataclasses.replace(
        row,
        precision=precision,
        params=sum(p.numel() for p in recipe.model.parameters()),
        gflops_per_image=flops / 1e9,
        aebench_img_s=rate,
        naive_img_s=batch / timing["baseline_seconds_per_step"],
        speedup=1 / timing["ratio"],
        speedup_low=1 / timing["ci_high"],
        speedup_high=1 / timing["ci_low"],
        pairs=timing["pairs"],
        achieved_gflop_s=flops * rate / 1e9,
        peak_fraction=flops * rate / 1e9 / peaks[precision],
        eval_img_s=eval_throughput(recipe.model, run.splits.test, cell, normalizer, precision),
        peak_memory_mb=peak_memory_mb(device),
    )


@torch.no_grad()
def eval_throughput(
    model: nn.Module, images: torch.Tensor, cell: CellConfig, normalizer: Normalizer, precision: str
) -> float:
    """No-grad forward passes in evaluation batches (``EVAL_BATCH_SIZE``), batch making included."""
    model.eval()

    def sweep() -> None:
        for inputs, _ in eval_batches(images, cell, normalizer):
            with autocast(precision, images.device):
                model(inputs)

    sweep()  # warm-up
    rate = len(images) / round_seconds(sweep, 1, images.device)
    model.train()
    return rate


def markdown_table(report: dict[str, Any]) -> str:
    """The report's rows as a markdown table."""
    head = (
        "| technique | precision | params (M) | GFLOP/img | aebench img/s | naive fp32 img/s | speed-up [95 % CI] "
        "| GFLOP/s | % of peak | eval img/s | peak MB |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['technique']} | {r['status']}: {r['reason'][:90]} |" + " |" * 9)
            continue
        lines.append(
            f"| {r['technique']} | {r['precision']} | {r['params'] / 1e6:.2f} | {r['gflops_per_image']:.3f} "
            f"| {r['aebench_img_s']:,.0f} | {r['naive_img_s']:,.0f} "
            f"| {r['speedup']:.2f}x [{r['speedup_low']:.2f}, {r['speedup_high']:.2f}] "
            f"| {r['achieved_gflop_s']:.1f} | {100 * r['peak_fraction']:.0f} % | {r['eval_img_s']:,.0f} "
            f"| {r['peak_memory_mb']:,.0f} |"
        )
    peaks = ", ".join(f"{p} {g:,.0f} GFLOP/s" for p, g in report["peak_gflop_s"].items())
    lines.append(
        f"\n{report['dataset']}, batch {report['batch_size']}, {report['device']}, {report['threads']} threads, "
        f"torch {report['torch_version']}; matmul peak measured on the spot: {peaks or 'n/a'}"
    )
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=1) + "\n")
