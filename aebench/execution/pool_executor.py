"""Cells in worker processes on this machine: the standard library's process pool, spawned workers, fixed threads.

The driver (this process) stays the single writer of ``results.jsonl``: workers return results, never write rows.
Each distinct downstream classifier is trained first, as a task of its own beside the first cells. A worker that
dies (killed, out of memory) breaks the pool: the tasks it held are run again, each alone, so that a second loss
is the cell's own and is recorded ``failed``, never a neighbour's.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

from aebench.config import CellConfig
from aebench.evaluation.classifier import classifier_key
from aebench.execution.runner import CellJob, CellResult, describe, failed_result
from aebench.execution.worker import (
    ATTEMPTS,
    WorkerSettings,
    execute_cell,
    openmp_env,
    prepare_classifier,
    start_worker,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Task:
    """A cell to run, or (``classifier``) the downstream classifier its dataset and settings need; which try."""

    cell: CellConfig
    classifier: bool = False
    attempt: int = 1

    def submit(self, pool: ProcessPoolExecutor, job: CellJob) -> Future[CellResult | None]:
        if not self.classifier:
            log.info("running %s", describe(self.cell))
        return pool.submit(prepare_classifier if self.classifier else execute_cell, self.cell, job)

    def what(self) -> str:
        return f"the {self.cell.dataset} classifier" if self.classifier else describe(self.cell)


def first_tasks(cells: list[CellConfig]) -> deque[Task]:
    """One classifier task per distinct classifier the cells need, then the cells in order."""
    firsts: dict[str, CellConfig] = {}
    for cell in cells:
        firsts.setdefault(classifier_key(cell), cell)
    return deque([*(Task(cell, classifier=True) for cell in firsts.values()), *map(Task, cells)])


@dataclass(frozen=True)
class PoolExecutor:
    """Up to ``workers`` cells at once, each in its own spawned process with ``threads`` torch threads."""

    workers: int
    threads: int

    def run(self, cells: list[CellConfig], job: CellJob) -> Iterator[CellResult]:
        if not cells:
            return
        job = replace(job, threads=self.threads, parallel=min(self.workers, len(cells)))
        level = logging.getLogger("aebench").getEffectiveLevel()
        settings = WorkerSettings(self.threads, openmp_env(self.threads), log_level=level)
        queue = first_tasks(cells)
        while queue:
            pool = ProcessPoolExecutor(
                min(self.workers, len(queue)),
                mp_context=multiprocessing.get_context("spawn"),  # a fresh interpreter: threads and OpenMP set first
                initializer=start_worker,
                initargs=(settings,),
            )
            try:
                lost = yield from self.serve(pool, queue, job)
            except BaseException:  # Ctrl-C, a machine fault, or the driver stopped reading: stop every cell
                kill(pool)
                raise
            pool.shutdown(wait=True)
            for task in lost:
                if task.attempt < ATTEMPTS:
                    log.warning("%s: its worker process died; running it again, alone", task.what())
                    queue.appendleft(replace(task, attempt=task.attempt + 1))
                elif task.classifier:
                    log.warning("%s: its worker process died twice; the cells train it themselves", task.what())
                else:
                    log.error("%s: its worker process died %d times; recorded failed", task.what(), task.attempt)
                    reason = f"worker process died {task.attempt} times (killed, or out of memory)"
                    yield failed_result(task.cell, job, reason)

    def serve(
        self, pool: ProcessPoolExecutor, queue: deque[Task], job: CellJob
    ) -> Generator[CellResult, None, list[Task]]:
        """Keep the pool busy from ``queue``, yield cell results as they finish; the tasks lost if a worker died."""
        pending: dict[Future[CellResult | None], Task] = {}
        lost: list[Task] = []
        while pending or (queue and not lost):  # after a loss, only wait for what is still in flight
            while not lost and self.may_submit(queue, pending):
                task = queue.popleft()
                pending[task.submit(pool, job)] = task
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                task = pending.pop(future)
                try:
                    result = future.result()
                except BrokenProcessPool:  # a worker died: every task still in the pool is lost with it
                    lost.append(task)
                    continue
                if result is not None:
                    yield result
        return lost

    def may_submit(self, queue: deque[Task], pending: dict[Future[CellResult | None], Task]) -> bool:
        """Room in the pool for the next task; a task run again after a loss runs with nothing beside it."""
        if not queue or len(pending) >= self.workers:
            return False
        retrying = queue[0].attempt > 1 or any(task.attempt > 1 for task in pending.values())
        return not (retrying and pending)


def kill(pool: ProcessPoolExecutor) -> None:
    """Cancel the queued tasks and kill the running ones (the pool has no public way to kill before Python 3.14)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.kill()
    for process in processes:
        process.join(timeout=10)
