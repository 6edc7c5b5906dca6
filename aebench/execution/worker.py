"""What a worker process does: fix its threads and OpenMP wait policy before torch loads, then run cells.

Used by the process pool (``aebench run`` on CPU) and by Ray. This module imports no torch at its top: a spawned
worker unpickles ``start_worker`` and its settings first, so the OpenMP environment is in place when torch loads.
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aebench.config import CellConfig
    from aebench.execution.runner import CellJob, CellResult, RunContext

log = logging.getLogger(__name__)
PARENT_POLL_SECONDS = 1.0
ATTEMPTS = 2  # a cell whose worker process dies is run once more, then recorded failed
WAIT_POLICY = "PASSIVE"  # OpenMP threads that wait sleep at once instead of spinning
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def openmp_env(threads: int) -> dict[str, str]:
    """The OpenMP environment of a worker with ``threads`` threads: waiting threads sleep (``PASSIVE``) instead of
    spinning, so a core that another process keeps busy slows a multi-threaded cell down instead of stalling it
    (spinning threads take the time the late thread needs). A policy the user set is kept."""
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    if threads > 1 and "OMP_WAIT_POLICY" not in os.environ:
        env["OMP_WAIT_POLICY"] = WAIT_POLICY
    return env


@dataclass(frozen=True)
class WorkerSettings:
    """A worker's threads and the environment it sets before torch loads (plain data: pickled to the worker)."""

    threads: int
    env: dict[str, str] = field(default_factory=dict)
    unset: tuple[str, ...] = ()  # variables removed first (a benchmark's "today's default" side)
    log_level: int = logging.INFO  # the driver's: a spawned worker starts with no logging set up
    exit_with_parent: bool = True  # a worker whose driver died (SIGKILL) stops instead of training on unseen


def start_worker(settings: WorkerSettings) -> None:
    """A pool worker's initializer: environment, then torch's threads; Ctrl-C is the driver's to handle."""
    for name in settings.unset:
        os.environ.pop(name, None)
    os.environ.update(settings.env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=settings.log_level, format="%(message)s", stream=sys.stderr)
    if settings.exit_with_parent:
        parent = os.getppid()
        threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    import torch  # after the environment: OpenMP reads it when torch loads

    torch.set_num_threads(settings.threads)
    torch.set_num_interop_threads(1)


def watch_parent(parent: int) -> None:
    """Exit this process once its parent is gone (it was re-parented): no orphan keeps training a cell."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


@functools.lru_cache(maxsize=1)
def worker_context(job: CellJob) -> RunContext:
    """One context per worker process and run: datasets and classifiers load once, threads set once."""
    import torch

    from aebench.execution.runner import RunContext

    if job.threads:
        torch.set_num_threads(job.threads)
    return RunContext.create(job)


def execute_cell(cell: CellConfig, job: CellJob) -> CellResult:
    """The task a worker runs: one cell, with data from the job's ``data_root``; returns its result to the driver."""
    from aebench.execution.runner import run_cell

    return run_cell(cell, worker_context(job))


def prepare_classifier(cell: CellConfig, job: CellJob) -> None:
    """The task that trains (or reads back) ``cell``'s downstream classifier ahead of the cells that need it, so
    it trains beside them; a failure is left to the cells, which meet it again and record it."""
    from aebench.execution.runner import cell_classifier

    try:
        cell_classifier(cell, worker_context(job))
    except Exception as exc:
        log.warning("classifier for %s not prepared ahead (%s: %s)", cell.dataset, type(exc).__name__, exc)
