"""``aebench bench --busy-core``: one cell's training throughput on a quiet machine and with one core kept busy
by another process, today's default against aebench's choice, side by side in one command.

Each side trains in a worker process of its own (spawned: its OpenMP environment set before torch loads),
built once and asked for timed rounds; the rounds alternate quiet and busy, and the sides within each.
- today: torch's default threads (every usable core), OpenMP's default wait policy (threads spin);
- aebench: the threads ``--executor auto`` gives one cell at that moment (the free cores, read from the load)
  in a worker whose waiting threads sleep (``OMP_WAIT_POLICY=PASSIVE`` when it runs more than one);
- aebench, load after the plan: the threads it gives on the quiet machine, kept when the core turns busy (a run
  fixes each cell's threads when it starts, so load that arrives later meets them), waiting threads asleep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import multiprocessing
import os
import statistics
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from aebench.bench.measure import images_per_second
from aebench.bench.run import BenchSettings, bench_lr, bench_run
from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.execution.machine import Machine, usable_cores
from aebench.execution.worker import THREAD_ENV, WAIT_POLICY, WorkerSettings, openmp_env, start_worker

LATE_LOAD = "aebench, load after the plan"
SPIN = "import os\nos.sched_setaffinity(0, {{{core}}})\nwhile True:\n    pass\n"


@contextmanager
def busy_core() -> Iterator[None]:
    """Another process spinning on this process's last usable core for the length of the block."""
    core = max(os.sched_getaffinity(0))
    spinner = subprocess.Popen([sys.executable, "-c", SPIN.format(core=core)])
    try:
        yield
    finally:
        spinner.kill()
        spinner.wait()


@functools.lru_cache(maxsize=1)
def cached_step(cell: CellConfig, data_root: Path, device: str, images: int) -> Any:
    """The cell's training step, built once per worker."""
    run = bench_run(cell, DatasetCache(data_root), torch.device(device), BenchSettings(images=images))
    return run.free_step(bench_lr(cell))


def measure(cell: CellConfig, data_root: Path, device: str, settings: BenchSettings, threads: int) -> float:
    """A worker's task: img/s of ``settings.steps`` training steps with ``threads`` threads (one warm-up step)."""
    torch.set_num_threads(threads)
    step = cached_step(cell, data_root, device, settings.images)
    step()
    return images_per_second(step, settings.steps, cell.train.batch_size, torch.device(device))


def worker(threads: int, env: dict[str, str]) -> ProcessPoolExecutor:
    """One spawned worker process with only this thread environment (the caller's thread variables removed)."""
    return ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(WorkerSettings(threads, env, unset=THREAD_ENV),),
    )


def busy_report(cell: CellConfig, data_root: Path, device: str, settings: BenchSettings) -> dict[str, Any]:
    """Median img/s of each side, quiet and with one core busy, over ``settings.repeats`` alternating rounds."""
    cores = usable_cores()
    ours = {**openmp_env(cores), "OMP_WAIT_POLICY": WAIT_POLICY}  # aebench's default, whatever this shell set
    sides = {"today": worker(cores, {}), "aebench": worker(cores, ours), LATE_LOAD: worker(cores, ours)}
    rates: dict[tuple[str, str], list[float]] = {}
    threads: dict[tuple[str, str], int] = {}
    try:
        for _ in range(settings.repeats):
            for condition in ("quiet", "busy"):
                with busy_core() if condition == "busy" else contextlib.nullcontext():
                    chosen = Machine.read().free_cores  # what auto gives one cell now
                    planned = threads.get(("aebench", "quiet"), chosen)  # what it gave before the load came
                    for name, pool in sides.items():
                        count = {"today": cores, "aebench": chosen, LATE_LOAD: planned}[name]
                        threads[name, condition] = count
                        rate = pool.submit(measure, cell, data_root, device, settings, count).result()
                        rates.setdefault((name, condition), []).append(rate)
    finally:
        for pool in sides.values():
            pool.shutdown(wait=True)
    medians = {key: statistics.median(values) for key, values in rates.items()}
    return {
        "technique": cell.technique,
        "dataset": cell.dataset,
        "cores": cores,
        "settings": dataclasses.asdict(settings),
        "sides": [
            {
                "side": name,
                "threads_quiet": threads[name, "quiet"],
                "threads_busy": threads[name, "busy"],
                "quiet_img_s": medians[name, "quiet"],
                "busy_img_s": medians[name, "busy"],
                "busy_over_quiet": medians[name, "busy"] / medians[name, "quiet"],
            }
            for name in sides
        ],
    }


def markdown_busy(report: dict[str, Any]) -> str:
    """The quiet-vs-busy table, one row per side."""
    lines = [
        "| side | threads quiet / busy | quiet img/s | one core busy img/s | busy / quiet |",
        "|---|--:|--:|--:|--:|",
    ]
    for s in report["sides"]:
        lines.append(
            f"| {s['side']} | {s['threads_quiet']} / {s['threads_busy']} | {s['quiet_img_s']:,.0f} "
            f"| {s['busy_img_s']:,.0f} | {s['busy_over_quiet']:.2f} |"
        )
    today, ours, late = report["sides"]
    lines.append(
        f"\n{report['dataset']} / {report['technique']}, {report['cores']} usable cores; aebench / today: quiet "
        f"{ours['quiet_img_s'] / today['quiet_img_s']:.2f}x, one core busy {ours['busy_img_s'] / today['busy_img_s']:.2f}x"
        f" (with the threads planned before the load: {late['busy_img_s'] / today['busy_img_s']:.2f}x)"
    )
    return "\n".join(lines)
