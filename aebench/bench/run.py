"""``aebench bench``: per technique, aebench's training step and the naive loop side by side in one process.

Same model (same initial weights), same images, same batch size; interleaved rounds, median img/s of each
and their ratio; FLOPs per image, achieved GFLOP/s and its fraction of a matmul peak measured on the spot
in the step's precision; no-grad evaluation throughput; peak memory.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aebench.bench.measure import (
    flops_per_image,
    images_per_second,
    interleaved_medians,
    matmul_peak_gflops,
)
from aebench.bench.naive import NaiveLoop, TutorialImages
from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.data.pixels import Normalizer
from aebench.data.registry import subset
from aebench.errors import SkipCell, UserError
from aebench.experiment import ExperimentConfig
from aebench.techniques import build_recipe
from aebench.training.batches import eval_batches
from aebench.training.loop import Run, Splits, start_run
from aebench.training.memory import peak_memory_mb, reset_peak_memory
from aebench.training.precision import autocast
from aebench.training.recipe import BuildContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchSettings:
    """How long each side is measured."""

    steps: int = 10  # training steps per timed round
    repeats: int = 5  # interleaved rounds; the median is reported
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
    speedup: float | None = None
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


def device_name(device: torch.device) -> str:
    """The device in words: the GPU's name, or the CPU model."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").is_file() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "cpu"


def bench_cell(
    cell: CellConfig, cache: DatasetCache, device: torch.device, settings: BenchSettings, peaks: dict[str, float]
) -> BenchRow:
    """The numbers of one technique; a technique that cannot be built or has no gradient step is skipped."""
    row = BenchRow(cell.technique)
    try:
        run = bench_run(cell, cache, device, settings)
    except (SkipCell, UserError) as exc:  # weights not at hand, or a technique that does not fit these images
        return dataclasses.replace(row, status="skipped", reason=str(exc))
    recipe, normalizer = run.recipe, run.normalizer
    naive_model = copy.deepcopy(recipe.model)
    reset_peak_memory(device)
    lr = bench_lr(cell)
    aebench_step = run.free_step(lr)
    raw = cache.raw(cell.source)  # the same images at their stored size: the tutorial resizes them per sample
    size, channels = run.splits.train.shape[-1], run.splits.train.shape[1]
    tutorial = TutorialImages(subset(raw.x_train, raw.y_train, settings.images)[0], size, channels)
    naive = NaiveLoop(naive_model, run.step.loss_fn, tutorial, cell.train.batch_size, lr, normalizer)
    batch = cell.train.batch_size
    rates = interleaved_medians(
        {"aebench": aebench_step, "naive": naive.step}, settings.steps, settings.repeats, batch, device
    )
    flops = flops_per_image(aebench_step, batch)
    precision = run.step.precision
    if precision not in peaks:
        peaks[precision] = matmul_peak_gflops(precision, device)
    achieved = flops * rates["aebench"] / 1e9
    return dataclasses.replace(
        row,
        precision=precision,
        params=sum(p.numel() for p in recipe.model.parameters()),
        gflops_per_image=flops / 1e9,
        aebench_img_s=rates["aebench"],
        naive_img_s=rates["naive"],
        speedup=rates["aebench"] / rates["naive"],
        achieved_gflop_s=achieved,
        peak_fraction=achieved / peaks[precision],
        eval_img_s=eval_throughput(recipe.model, run.splits.test, cell, normalizer, precision),
        peak_memory_mb=peak_memory_mb(device),
    )


def bench_run(cell: CellConfig, cache: DatasetCache, device: torch.device, settings: BenchSettings) -> Run:
    """The cell's run started on ``settings.images`` training images on ``device``; a SkipCell or UserError when
    it cannot be built here or has no gradient step."""
    data = cache.prepared(cell.source, dataclasses.replace(cell.data, limit_train=settings.images)).to(device)
    ctx = BuildContext.for_cell(cell, data.x_train)
    recipe = build_recipe(cell.technique, ctx, cell.seed)
    if not recipe.phases:
        raise SkipCell("no gradient steps (a closed-form fit)")
    recipe.model.to(device)
    splits = Splits(data.x_train, data.x_test[: settings.eval_images])
    return start_run(recipe, splits, cell, ctx.normalizer(device), "bench", None)


def bench_lr(cell: CellConfig) -> float:
    """The constant LR the bench steps at: the configured one (``lr: auto``'s range test is not what is timed)."""
    return float(cell.train.lr) if cell.train.lr != "auto" else 1e-3


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
    rate = images_per_second(sweep, 1, len(images), images.device)
    model.train()
    return rate


def markdown_table(report: dict[str, Any]) -> str:
    """The report's rows as a markdown table."""
    head = (
        "| technique | precision | params (M) | GFLOP/img | aebench img/s | naive fp32 img/s | speed-up "
        "| GFLOP/s | % of peak | eval img/s | peak MB |\n|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    lines = [head]
    for r in report["rows"]:
        if r["status"] != "ok":
            lines.append(f"| {r['technique']} | {r['status']}: {r['reason'][:90]} |" + " |" * 9)
            continue
        lines.append(
            f"| {r['technique']} | {r['precision']} | {r['params'] / 1e6:.2f} | {r['gflops_per_image']:.3f} "
            f"| {r['aebench_img_s']:,.0f} | {r['naive_img_s']:,.0f} | {r['speedup']:.2f}x "
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
