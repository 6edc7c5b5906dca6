"""``aebench bench --sweep``: an experiment's sweep, shortened, run three ways side by side in one command, and
the full experiment's wall time on this machine estimated from it.

Each way is a real ``aebench run`` in a fresh process (start-up, data loading, the classifier and every cell
included) into its own folder; the repeats alternate the order so that a machine's changing load hits them alike.
The thread variables (OMP_NUM_THREADS, OMP_WAIT_POLICY, ...) are removed from their environment, so that
"today" is what a user gets without them.
"""

from __future__ import annotations

import heapq
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.errors import UserError
from aebench.execution.auto_executor import plan_run
from aebench.execution.cost import SHOWN_FLAGS
from aebench.execution.machine import Machine
from aebench.execution.worker import THREAD_ENV
from aebench.experiment import ExperimentConfig
from aebench.results.store import read_rows
from aebench.training.precision import cpu_flags

CLASSIFIER_EPOCHS = 1  # the measured sweep's classifier: scaled up to the experiment's epochs in the estimate


@dataclass(frozen=True)
class Variant:
    """One way to run the sweep: its name, what it means, and its ``aebench run`` options."""

    name: str
    how: str
    args: tuple[str, ...]


def variants(cores: int) -> list[Variant]:
    """Today's default, one cell at a time as ``auto`` runs it, and ``auto``'s parallel cells."""
    return [
        Variant("today", "--executor local: one cell after another, torch's default threads", ("--executor", "local")),
        Variant(
            "sequential",
            "auto, one cell at a time: threads from the free cores",
            ("--executor", "auto", "--max-parallel", "1"),
        ),
        Variant(
            "parallel",
            f"auto: up to {cores} cells at once in worker processes",
            ("--executor", "auto", "--max-parallel", str(cores)),
        ),
    ]


@dataclass(frozen=True)
class SweepSettings:
    """How the measured sweep shortens the experiment."""

    images: int = 16384  # training images per cell (data.limit_train; the CLI's default too): long enough to
    # outweigh the processes' starts
    test_images: int = 2048  # data.limit_test
    epochs: int = 1
    seeds: int = 1  # the first seeds of the experiment
    repeats: int = 1


def shortened_sets(config: ExperimentConfig, sets: list[str], settings: SweepSettings) -> list[str]:
    """The ``--set`` options of the measured sweep: the user's, then the shortening."""
    limit = min(settings.images, config.data.limit_train or settings.images)
    test = min(settings.test_images, config.data.limit_test or settings.test_images)
    return [
        *sets,
        f"data.limit_train={limit}",
        f"data.limit_test={test}",
        f"train.epochs={settings.epochs}",
        f"classifier.epochs={CLASSIFIER_EPOCHS}",
        f"seeds={list(config.seeds[: settings.seeds])}",
    ]


def run_variant(
    variant: Variant, experiment: Path, sets: list[str], data_root: Path, device: str, out: Path
) -> tuple[float, list[dict[str, Any]]]:
    """Wall seconds of ``aebench run`` in a fresh process for this variant, and the rows it wrote."""
    package_parent = str(Path(__file__).resolve().parents[2])
    env = {k: v for k, v in os.environ.items() if k not in THREAD_ENV}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_parent, env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "aebench", "-q", "run", str(experiment), "--out", str(out)]
    command += ["--data-root", str(data_root), "--device", device, *variant.args]
    for item in sets:
        command += ["--set", item]
    start = time.perf_counter()
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no message"])[-1]
        raise UserError(f"bench --sweep: the {variant.name} run failed (exit {proc.returncode}): {last}")
    return seconds, read_rows(out)


def makespan(durations: Iterable[float], workers: int) -> float:
    """Wall seconds of jobs taken in order by the first free of ``workers`` (the process pool's scheduling)."""
    free = [0.0] * max(1, workers)
    for seconds in durations:
        heapq.heappush(free, heapq.heappop(free) + seconds)
    return max(free)


@dataclass(frozen=True)
class CellTime:
    """One measured cell's seconds, split by how each part grows with the experiment's size."""

    train: float  # with training images (split x epochs; a closed-form fit: the split once)
    evaluation: float  # the final evaluation: with test images
    rest: float  # per-epoch test passes, saving: with test images x epochs

    @classmethod
    def of(cls, row: dict[str, Any]) -> CellTime:
        train, evaluation = row.get("train_seconds") or 0.0, row.get("eval_seconds") or 0.0
        apart = sum(row.get(k) or 0.0 for k in ("classifier_seconds", "probe_seconds", "compile_seconds"))
        return cls(train, evaluation, max(0.0, (row.get("cell_seconds") or 0.0) - train - evaluation - apart))

    @property
    def seconds(self) -> float:
        return self.train + self.evaluation + self.rest


@dataclass(frozen=True)
class Sizes:
    """A dataset's split sizes, to scale measured cells up to the full experiment's."""

    train: int
    test: int

    def of(self, cell: CellConfig) -> Sizes:
        return Sizes(
            min(self.train, cell.data.limit_train or self.train), min(self.test, cell.data.limit_test or self.test)
        )


def full_cell_seconds(cell: CellConfig, row: dict[str, Any], sizes: Sizes) -> float:
    """A full cell's seconds (its classifier apart), scaled from the measured ``row`` of its technique."""
    part, n = CellTime.of(row), sizes.of(cell)
    fits = not row.get("epochs_trained")  # a closed-form fit reads the split once
    epochs, measured_epochs = (1, 1) if fits else (cell.train.epochs, row["epochs"])
    train = part.train * n.train * epochs / (row["n_train"] * measured_epochs)
    tests = n.test / row["n_test"]
    return train + part.evaluation * tests + part.rest * tests * epochs / measured_epochs


def estimate(
    full: list[CellConfig],
    rows: list[dict[str, Any]],
    workers: int,
    wall: float,
    classifier: float,
    sizes: dict[str, Sizes],
) -> tuple[float, int]:
    """Estimated wall seconds of the ``full`` cells with ``workers`` at once, from one variant's measured ``rows``,
    its ``wall`` seconds and the ``classifier``'s seconds at the measured size; and how many full cells had no
    measured row of their technique (left out).

    Each cell's training scales with its training images, its evaluation with its test images, the rest (the
    test pass after each epoch, saving) with its test images and epochs; each dataset's classifier is trained
    once, first; the start-up the measured sweep paid beyond its cells is added as it was."""
    ok = {(r["dataset"], r["technique"]): r for r in rows if r["status"] == "ok"}
    skipped = {(r["dataset"], r["technique"]) for r in rows if r["status"] == "skipped"}
    measured_train = max((r["n_train"] for r in ok.values()), default=1)
    classifiers, durations, unmeasured = {}, [], 0
    for cell in full:
        key = (cell.dataset, cell.technique)
        if key in skipped:
            continue
        if key not in ok:
            unmeasured += 1
            continue
        n = sizes[cell.dataset].of(cell)
        classifiers[cell.dataset] = classifier * n.train * cell.classifier.epochs / (measured_train * CLASSIFIER_EPOCHS)
        durations.append(full_cell_seconds(cell, ok[key], sizes[cell.dataset]))
    parts = [CellTime.of(r) for r in ok.values()]
    startup = max(0.0, wall - makespan([classifier, *(p.seconds for p in parts)], workers))
    return startup + makespan([*classifiers.values(), *durations], workers), unmeasured


def sweep_report(
    config: ExperimentConfig,
    experiment: Path,
    sets: list[str],
    data_root: Path,
    device: str,
    settings: SweepSettings,
) -> dict[str, Any]:
    """Run the shortened sweep ``settings.repeats`` times per variant (alternating the order); the numbers, with
    each variant's estimate of the full experiment (``config``) here."""
    machine = Machine.read()
    chosen = variants(machine.cores)
    measured_sets = shortened_sets(config, sets, settings)
    walls: dict[str, list[float]] = {v.name: [] for v in chosen}
    rows: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory(prefix="aebench-sweep-") as tmp:
        for repeat in range(settings.repeats):
            for variant in chosen if repeat % 2 == 0 else chosen[::-1]:
                out = Path(tmp) / f"{variant.name}-{repeat}"
                seconds, rows[variant.name] = run_variant(variant, experiment, measured_sets, data_root, device, out)
                walls[variant.name].append(seconds)
    full = config.cells()
    plan, _ = plan_run(full, data_root)
    data = DatasetCache(data_root)
    sizes = {c.dataset: Sizes(len(data.raw(c.source).x_train), len(data.raw(c.source).x_test)) for c in full}
    # the parallel run trains its classifier as a task of its own, outside every row: take the longest seen
    classifier = max((r.get("classifier_seconds") or 0.0 for rs in rows.values() for r in rs), default=0.0)
    results = []
    for variant in chosen:
        written, wall = rows[variant.name], statistics.mean(walls[variant.name])
        workers = plan.workers if variant.name == "parallel" else 1
        full_wall, unmeasured = estimate(full, written, workers, wall, classifier, sizes)
        results.append(
            {
                "variant": variant.name,
                "how": variant.how,
                "seconds": walls[variant.name],
                "mean_seconds": wall,
                "cells": len(written),
                "ok": sum(r["status"] == "ok" for r in written),
                "threads": sorted({r["threads"] for r in written if r.get("threads") is not None}),
                "parallel_cells": max((r.get("parallel_cells") or 1 for r in written), default=1),
                "full_estimate_seconds": full_wall,
                "full_unmeasured_cells": unmeasured,
                "images_per_second": {r["technique"]: r["images_per_second"] for r in written if r["status"] == "ok"},
            }
        )
    return {
        "experiment": str(experiment),
        "cells_full": len(full),
        "measured_sets": measured_sets,
        "cpu_flags": [f for f in SHOWN_FLAGS if f in cpu_flags()],
        "cores": machine.cores,
        "busy_at_start": machine.busy,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else [],
        "full_plan": plan.describe(len(full)),
        "variants": results,
    }


def hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 5400 else f"{seconds / 60:.0f} min"


def markdown_sweep(report: dict[str, Any]) -> str:
    """The sweep report as a markdown table, ratios against today's default, and the full-experiment estimate."""
    by_name = {v["variant"]: v for v in report["variants"]}
    today = by_name["today"]["mean_seconds"]
    lines = [
        "| variant | how | wall s (each run) | mean s | speed vs today | cells ok | threads/cell | cells at once "
        "| full experiment, estimated |",
        "|---|---|---|--:|--:|--:|--:|--:|--:|",
    ]
    for v in report["variants"]:
        runs = ", ".join(f"{s:.0f}" for s in v["seconds"])
        threads = "/".join(map(str, v["threads"])) or "-"
        lines.append(
            f"| {v['variant']} | {v['how']} | {runs} | {v['mean_seconds']:.0f} | {today / v['mean_seconds']:.2f}x "
            f"| {v['ok']}/{v['cells']} | {threads} | {v['parallel_cells']} | {hours(v['full_estimate_seconds'])} |"
        )
    lines += ["", rates_table(report["variants"])]
    parallel = by_name["parallel"]
    left_out = parallel["full_unmeasured_cells"]
    note = f" ({left_out} cells of techniques not measured left out)" if left_out else ""
    lines += [
        "",
        f"{report['device']} (flags: {' '.join(report['cpu_flags']) or 'none of ' + ', '.join(SHOWN_FLAGS)}), "
        f"{report['cores']} usable cores, {report['busy_at_start']:.1f} busy with other processes at the start, "
        f"load average {', '.join(f'{x:.1f}' for x in report['load_average'] or [])}.",
        f"Measured sweep: {report['experiment']} with {' '.join('--set ' + s for s in report['measured_sets'])}.",
        f"How long will the full experiment take here ({report['cells_full']} cells; {report['full_plan']}): "
        f"about {hours(parallel['full_estimate_seconds'])} with the default executor, "
        f"{hours(by_name['today']['full_estimate_seconds'])} with today's default{note}; an estimate scaled from "
        "the measured cells by their images, at this machine's load.",
    ]
    return "\n".join(lines)


def rates_table(variants: list[dict[str, Any]]) -> str:
    """Training img/s of each measured technique's cell, per variant (a cell's own rate, beside its neighbours)."""
    techniques = list(dict.fromkeys(t for v in variants for t in v["images_per_second"]))
    lines = [
        "| technique | " + " | ".join(f"{v['variant']} img/s a cell" for v in variants) + " |",
        "|---|" + "--:|" * len(variants),
    ]
    for technique in techniques:
        rates = [v["images_per_second"].get(technique) for v in variants]
        lines.append(f"| {technique} | " + " | ".join("-" if r is None else f"{r:,.0f}" for r in rates) + " |")
    return "\n".join(lines)
