"""``aebench bench --busy-core``: one cell's training throughput on a quiet machine and with one core kept busy
by another process, today's default against aebench's choice, side by side in one command; with ``--cost``, the
controlled cost ratios quiet and busy (measured interleaved, they should not move), or alone: the cost on demand.

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

from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.execution.cost import CostSettings, measure_costs, timing_lr, timing_run
from aebench.execution.lock import results_lock
from aebench.execution.machine import Machine, usable_cores
from aebench.execution.timer import round_seconds
from aebench.execution.worker import THREAD_ENV, WAIT_POLICY, WorkerSettings, openmp_env, start_worker
from aebench.experiment import ExperimentConfig
from aebench.files import results_folder_checks
from aebench.results.cost import describe_entry, describe_machine, write_cost

LATE_LOAD = "aebench, load after the plan"
IMAGES = 4096  # training images the step draws from
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
def cached_step(cell: CellConfig, data_root: Path, device: str) -> Any:
    """The cell's training step, built once per worker."""
    return timing_run(cell, DatasetCache(data_root), torch.device(device), IMAGES).free_step(timing_lr(cell))


def measure(cell: CellConfig, data_root: Path, device: str, steps: int, threads: int) -> float:
    """A worker's task: img/s of ``steps`` training steps with ``threads`` threads (after one untimed step)."""
    torch.set_num_threads(threads)
    step = cached_step(cell, data_root, device)
    round_seconds(step, 1, torch.device(device))
    return steps * cell.train.batch_size / round_seconds(step, steps, torch.device(device))


def worker(threads: int, env: dict[str, str]) -> ProcessPoolExecutor:
    """One spawned worker process with only this thread environment (the caller's thread variables removed)."""
    return ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=start_worker,
        initargs=(WorkerSettings(threads, env, unset=THREAD_ENV),),
    )


def busy_report(cell: CellConfig, data_root: Path, device: str, steps: int, repeats: int) -> dict[str, Any]:
    """Median img/s of each side, quiet and with one core busy, over ``repeats`` alternating rounds of ``steps``."""
    cores = usable_cores()
    ours = {**openmp_env(cores), "OMP_WAIT_POLICY": WAIT_POLICY}  # aebench's default, whatever this shell set
    sides = {"today": worker(cores, {}), "aebench": worker(cores, ours), LATE_LOAD: worker(cores, ours)}
    rates: dict[tuple[str, str], list[float]] = {}
    threads: dict[tuple[str, str], int] = {}
    try:
        for _ in range(repeats):
            for condition in ("quiet", "busy"):
                with busy_core() if condition == "busy" else contextlib.nullcontext():
                    chosen = Machine.read().free_cores  # what auto gives one cell now
                    planned = threads.get(("aebench", "quiet"), chosen)  # what it gave before the load came
                    for name, pool in sides.items():
                        count = {"today": cores, "aebench": chosen, LATE_LOAD: planned}[name]
                        threads[name, condition] = count
                        rate = pool.submit(measure, cell, data_root, device, steps, count).result()
                        rates.setdefault((name, condition), []).append(rate)
    finally:
        for pool in sides.values():
            pool.shutdown(wait=True)
    medians = {key: statistics.median(values) for key, values in rates.items()}
    return {
        "technique": cell.technique,
        "dataset": cell.dataset,
        "cores": cores,
        "settings": {"steps": steps, "repeats": repeats, "images": IMAGES},
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


def cost_report(
    config: ExperimentConfig,
    data_root: Path,
    device: torch.device,
    settings: CostSettings,
    busy: bool,
    out: Path | None,
) -> dict[str, Any]:
    """The cost record measured quiet (written into ``out`` when given) and, with ``busy``, with one core busy."""
    records = {"quiet": measure_costs(config, data_root, device, settings)}
    if out is not None:
        results_folder_checks(out)
        with results_lock(out):
            write_cost(out, records["quiet"])
    if busy:
        with busy_core():
            records["busy"] = measure_costs(config, data_root, device, settings)
    return {"records": records, "load_average": list(os.getloadavg())}


def markdown_cost(report: dict[str, Any]) -> str:
    """One row per measured entry: its cost in each condition, and busy over quiet where both were measured."""
    records = report["records"]
    keyed = {name: {(e["dataset"], e["technique"], e["kind"]): e for e in r["entries"]} for name, r in records.items()}
    lines = [
        "| dataset | technique | kind | " + " | ".join(f"{name}: cost vs baseline [95 % CI]" for name in records)
        + (" | busy / quiet |" if "busy" in records else " |"),
        "|---|---|---|" + "---|" * len(records) + ("--:|" if "busy" in records else ""),
    ]  # fmt: skip
    for key, quiet in keyed["quiet"].items():
        cells = [describe_entry(keyed[name].get(key)) for name in records]
        busy = keyed.get("busy", {}).get(key)
        moved = busy["ratio"] / quiet["ratio"] if busy is not None and quiet["kind"] == "step" else None
        tail = [f"{moved:.3f}" if moved is not None else "-"] if "busy" in records else []
        lines.append("| " + " | ".join([*key, *cells, *tail]) + " |")
    for name, record in records.items():
        skipped = "; ".join(f"{s['technique']}: {s['reason'][:80]}" for s in record["skipped"])
        lines.append(f"\n{name}: {describe_machine(record['machine'])}" + (f"; skipped: {skipped}" if skipped else ""))
    lines.append(f"load average at the end: {', '.join(f'{x:.1f}' for x in report['load_average'])}")
    return "\n".join(lines)
