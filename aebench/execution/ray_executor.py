"""Cells as Ray tasks (``aebench run --executor ray``): declared resources, one retry when a worker dies.

The driver (this process) stays the single writer of ``results.jsonl``: workers return results, never write rows.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any

from aebench.about import PACKAGE_DIR
from aebench.config import CellConfig
from aebench.errors import UserError
from aebench.execution.runner import CellJob, CellResult, describe, failed_result
from aebench.execution.services import require_reachable
from aebench.execution.worker import ATTEMPTS, execute_cell

log = logging.getLogger(__name__)

INSTALL_HINT = "--executor ray needs Ray: pip install -e '.[ray]'"
GCS_PORT = 6379  # Ray's default head port


def import_ray() -> ModuleType:
    """The ``ray`` module, or a one-line user error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise UserError(INSTALL_HINT) from None
    return ray


def check_address(address: str | None) -> None:
    """For ``--address``, a UserError unless the cluster's address accepts a connection within
    ``SERVICE_TIMEOUT`` seconds (Ray itself retries for many minutes); ``auto`` is resolved as Ray resolves it."""
    if address is None:  # a Ray of our own
        return
    target = address
    if address == "auto":
        try:
            target = import_ray()._private.services.canonicalize_bootstrap_address_or_die("auto")
        except ConnectionError as exc:
            raise UserError(f"--address auto: {exc}") from None
    require_reachable(target, f"--address {address}", GCS_PORT)


@dataclass(frozen=True)
class CellResources:
    """What each cell task declares to Ray's scheduler."""

    cpus: float
    gpus: float = 0.0


@dataclass
class RayExecutor:
    """Runs cells as Ray tasks on a cluster (``address``) or on a local Ray started for this run (no address).

    At most ``max_parallel`` cells are in flight (default: as many as the resources allow); each cell uses
    ``cpus`` torch threads, so parallel cells do not oversubscribe the cores.
    """

    address: str | None = None
    max_parallel: int | None = None
    cpus_per_cell: float | None = None
    gpus_per_cell: float = 0.0

    def __post_init__(self) -> None:
        check_address(self.address)  # made before the run: a cluster that does not answer fails before the lock

    def resources(self) -> CellResources:
        """Per-cell CPUs: as given, else on a local Ray the cores shared by ``max_parallel`` cells, else one."""
        if self.cpus_per_cell is not None:
            return CellResources(self.cpus_per_cell, self.gpus_per_cell)
        cores = os.cpu_count() or 1
        share = cores // self.max_parallel if self.address is None and self.max_parallel else 1
        return CellResources(max(1, share), self.gpus_per_cell)

    def run(self, cells: list[CellConfig], job: CellJob) -> Iterator[CellResult]:
        ray = import_ray()
        if not cells:
            return
        resources = self.resources()
        job = replace(job, threads=max(1, int(resources.cpus)))
        started = self.connect(ray)
        try:
            yield from self.schedule(ray, cells, job, resources)
        finally:
            if started:
                ray.shutdown()

    def connect(self, ray: ModuleType) -> bool:
        """Join the cluster at ``address``, or start a local Ray; False when this process was already connected."""
        if ray.is_initialized():
            return False
        options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
        if self.address is None:  # a Ray of our own; its workers import this very aebench checkout
            package_parent = str(PACKAGE_DIR.parent)
            path = os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")]))
            options["runtime_env"] = {"env_vars": {"PYTHONPATH": path}}
        try:
            ray.init(address=self.address or "local", **options)
        except ConnectionError as exc:
            raise UserError(f"--address {self.address}: no Ray cluster answers there ({exc})") from None
        return True

    def schedule(
        self, ray: ModuleType, cells: list[CellConfig], job: CellJob, resources: CellResources
    ) -> Iterator[CellResult]:
        """Keep up to ``max_parallel`` tasks in flight; yield results as they finish; cancel the rest on exit."""
        task = ray.remote(num_cpus=resources.cpus, num_gpus=resources.gpus, max_retries=0)(execute_cell)
        job_ref = ray.put(job)
        queue = deque((cell, 1) for cell in cells)
        pending: dict[Any, tuple[CellConfig, int]] = {}
        limit = self.max_parallel or len(cells)
        log.info(
            "ray: %d cells, %s CPU and %s GPU each, at most %d at once", len(cells), *vars(resources).values(), limit
        )
        try:
            while queue or pending:
                while queue and len(pending) < limit:
                    cell, attempt = queue.popleft()
                    pending[task.remote(cell, job_ref)] = (cell, attempt)
                (ref,), _ = ray.wait(list(pending), num_returns=1)
                cell, attempt = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except ray.exceptions.RayError as exc:
                    reason = f"{type(exc).__name__}: {exc}".splitlines()[0]
                    if attempt < ATTEMPTS:
                        log.warning("%s: worker lost (%s); retrying once", describe(cell), reason)
                        queue.appendleft((cell, attempt + 1))
                    else:
                        log.error("%s: failed after %d attempts: %s", describe(cell), attempt, reason)
                        yield failed_result(cell, job, f"ray, {attempt} attempts: {reason}")
        finally:
            for ref in pending:  # Ctrl-C or an error in the driver: stop what still runs, keep what finished
                ray.cancel(ref, force=True)
