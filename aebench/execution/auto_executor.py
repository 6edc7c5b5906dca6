"""``--executor auto`` (the default): on a CPU, as many cells at once as pays, each with a fixed thread count.

Independent single-threaded cells use a machine's cores better than one cell using them all (no thread waits
for another at each parallel region), and a core that another process keeps busy only slows them down. The plan
is made once, when the run starts, from the cores this process may use, the load other processes put on them
and the memory the cells need; each row records its cell's ``threads`` and ``parallel_cells``. On a GPU cells
run one after another in this process, as with ``--executor local``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.execution.cell_memory import cell_memory_mb
from aebench.execution.machine import Machine
from aebench.execution.pool_executor import PoolExecutor
from aebench.execution.runner import CellJob, CellResult, Executor, LocalExecutor, resolve_device

log = logging.getLogger(__name__)

MIN_PARALLEL_IMAGES = 100_000  # below this many training images per cell (on average) cells run in this
# process: a worker's start (a fresh interpreter importing torch, loading the data: 5-20 s) is not repaid
MEMORY_SHARE = 0.8  # of the available memory, what the parallel cells may take together


@dataclass(frozen=True)
class Plan:
    """How a run's cells use this machine: cells at once, torch threads per cell, and where they run."""

    workers: int
    threads: int
    in_process: bool  # one cell at a time in this process (else worker processes)
    why: str

    def oversubscribed(self, machine: Machine) -> bool:
        """Whether the cells' threads and the other processes' load ask for more cores than there are."""
        return self.workers * self.threads + machine.busy > machine.cores + 0.5

    def describe(self, cells: int) -> str:
        where = "in this process" if self.in_process else "in worker processes"
        plural = "" if self.threads == 1 else "s"
        return f"{cells} cells, {self.workers} at once {where} ({self.why}), {self.threads} torch thread{plural} each"


def training_images(cell: CellConfig, raw_train: int) -> int:
    """Images one cell trains on: its split times its epochs."""
    return min(raw_train, cell.data.limit_train or raw_train) * cell.train.epochs


def plan_cells(
    cells: list[CellConfig],
    machine: Machine,
    memory_mb: float,
    images: float,
    max_parallel: int | None = None,
    threads: int | None = None,
) -> Plan:
    """The plan for ``cells`` on ``machine``: ``memory_mb`` per cell (the largest estimate), ``images`` trained
    per cell on average. ``max_parallel`` (the user's cap) also overrides the small-sweep rule.

    Cells with more than one thread run in worker processes even one at a time: their OpenMP threads wait
    passively there (``worker.openmp_env``), so a core that another process takes later slows them, not stalls
    them. Small sweeps stay in this process, where a worker's start would cost more than it saves.
    """
    small = images < MIN_PARALLEL_IMAGES
    limits = {"cells": len(cells), "usable cores": machine.cores}
    if max_parallel is not None:
        limits["--max-parallel"] = max_parallel
    elif small:
        limits[f"cells under {MIN_PARALLEL_IMAGES:,} training images"] = 1
    if machine.memory_mb is not None:
        limits[f"memory, ~{memory_mb / 1024:.1f} GB a cell"] = int(MEMORY_SHARE * machine.memory_mb // memory_mb)
    bound = min(limits, key=lambda name: limits[name])
    workers = max(1, limits[bound])
    threads = threads or max(1, machine.free_cores // workers)
    in_process = workers == 1 and (threads == 1 or small)
    return Plan(workers, threads, in_process, f"bound by {bound}")


def plan_run(
    cells: list[CellConfig], data_root: Path, max_parallel: int | None = None, threads: int | None = None
) -> tuple[Plan, Machine]:
    """The plan ``--executor auto`` makes for ``cells`` on this machine now, and the machine it read."""
    data = DatasetCache(data_root)
    raws = {name: data.raw(name) for name in dict.fromkeys(c.source for c in cells)}
    memory = max(cell_memory_mb(cell, raws[cell.source]) for cell in cells)
    images = sum(training_images(cell, len(raws[cell.source].x_train)) for cell in cells) / len(cells)
    machine = Machine.read()
    return plan_cells(cells, machine, memory, images, max_parallel, threads), machine


def threads_from_env() -> int | None:
    """The thread count a user fixed with ``OMP_NUM_THREADS`` (kept, like ``--cpus-per-cell``); None if unset."""
    value = os.environ.get("OMP_NUM_THREADS", "")
    return int(value) if value.isdigit() and int(value) > 0 else None


@dataclass(frozen=True)
class AutoExecutor:
    """Plans the run on this machine, then runs it through a :class:`PoolExecutor` or the local executor."""

    max_parallel: int | None = None
    threads: int | None = None  # torch threads per cell (default: the free cores shared by the parallel cells)

    def run(self, cells: list[CellConfig], job: CellJob) -> Iterator[CellResult]:
        if not cells:
            return
        if resolve_device(job.device).type != "cpu":
            yield from LocalExecutor().run(cells, replace(job, threads=self.threads))
            return
        plan, machine = plan_run(cells, job.data_root, self.max_parallel, self.threads or threads_from_env())
        log.info("cpu: %s; %s", machine.describe(), plan.describe(len(cells)))
        crowded = warn_if_oversubscribed(plan, machine, False)
        executor, job = self.executor(plan, job)
        for result in executor.run(cells, job):
            yield result
            now = Machine.read(own_threads=1 + plan.workers * plan.threads, samples=3)
            crowded = warn_if_oversubscribed(plan, now, crowded)

    def choose(self, cells: list[CellConfig], job: CellJob) -> tuple[Executor, CellJob]:
        """The executor and job ``run`` would use for ``cells`` on this machine now (on a CPU)."""
        plan, _ = plan_run(cells, job.data_root, self.max_parallel, self.threads or threads_from_env())
        return self.executor(plan, job)

    @staticmethod
    def executor(plan: Plan, job: CellJob) -> tuple[Executor, CellJob]:
        if plan.in_process:
            return LocalExecutor(), replace(job, threads=plan.threads)
        return PoolExecutor(plan.workers, plan.threads), job


def warn_if_oversubscribed(plan: Plan, machine: Machine, was: bool) -> bool:
    """Log when the run's threads and the other processes' load start (or stop) asking for more cores than there
    are; returns whether they do now."""
    now = plan.oversubscribed(machine)
    if now and not was:
        log.warning(
            "cpu oversubscribed: %d cell(s) x %d thread(s) on %d cores, %.1f of them busy with other processes: "
            "cells run slower than this machine can give (their results do not change: threads are fixed)",
            plan.workers,
            plan.threads,
            machine.cores,
            machine.busy,
        )
    elif was and not now:
        log.info("cpu no longer oversubscribed (%.1f cores busy with other processes)", machine.busy)
    return now
