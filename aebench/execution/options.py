"""The ``aebench run`` options that choose where cells run (``--executor``) and where they are shown (``--track``).

Kept free of heavy imports: the command line parses these before torch or Ray load.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING

from aebench.errors import UserError

if TYPE_CHECKING:
    from aebench.execution.runner import Executor

RAY_ONLY = ("address", "gpus_per_cell")
PARALLEL_ONLY = ("max_parallel", "cpus_per_cell")  # auto and ray


def add_execution_arguments(parser: argparse.ArgumentParser) -> None:
    """``--executor auto|local|ray [--address A] [--max-parallel N] [--cpus-per-cell C] [--gpus-per-cell G]``,
    ``--track``."""
    group = parser.add_argument_group("where cells run (Ray: pip install -e '.[ray]')")
    group.add_argument(
        "--executor",
        choices=["auto", "local", "ray"],
        default="auto",
        help="auto (default): on a CPU, parallel cells in worker processes where that pays; "
        "local: one after another in this process with torch's default threads",
    )
    group.add_argument("--address", help="Ray cluster to join: auto or HOST:PORT (default: start a local Ray)")
    group.add_argument("--max-parallel", type=int, metavar="N", help="at most N cells at once (auto, ray)")
    group.add_argument(
        "--cpus-per-cell",
        type=float,
        metavar="C",
        help="torch threads each cell uses, and CPUs it declares to Ray (default: free cores / cells at once; "
        "a Ray cluster: 1)",
    )
    group.add_argument(
        "--gpus-per-cell", type=float, default=0.0, metavar="G", help="GPUs each cell declares, e.g. 0.25 (default 0)"
    )
    parser.add_argument(
        "--track",
        action="append",
        default=[],
        metavar="mlflow[:URI]|tensorboard",
        help="also show each cell in MLflow or TensorBoard (repeatable; pip install -e '.[track]')",
    )


def check_execution_args(args: argparse.Namespace) -> None:
    """A one-line user error for ``--executor``/``--track`` options that do not fit together, are out of range or
    unknown; starts nothing and connects to nothing (``--dry-run`` refuses what the run would refuse)."""
    allowed = {"local": (), "auto": PARALLEL_ONLY, "ray": (*PARALLEL_ONLY, *RAY_ONLY)}[args.executor]
    given = [name for name in (*PARALLEL_ONLY, *RAY_ONLY) if getattr(args, name) not in (None, 0.0)]
    for name in given:
        if name not in allowed:
            users = "ray" if name in RAY_ONLY else "auto or ray"
            raise UserError(f"--{name.replace('_', '-')} applies to --executor {users} only")
    if args.max_parallel is not None and args.max_parallel < 1:
        raise UserError(f"--max-parallel must be at least 1 (got {args.max_parallel})")
    if args.cpus_per_cell is not None and not (math.isfinite(args.cpus_per_cell) and args.cpus_per_cell > 0):
        raise UserError(f"--cpus-per-cell must be a finite number above 0 (got {args.cpus_per_cell})")
    if args.executor == "auto" and args.cpus_per_cell is not None and not float(args.cpus_per_cell).is_integer():
        raise UserError(
            f"--cpus-per-cell must be a whole number of threads with --executor auto (got {args.cpus_per_cell})"
        )
    if not (math.isfinite(args.gpus_per_cell) and args.gpus_per_cell >= 0):
        raise UserError(f"--gpus-per-cell must be a finite number, 0 or more (got {args.gpus_per_cell})")
    tracker_specs(args.track)


def tracker_specs(specs: list[str]) -> list[tuple[str, str]]:
    """``(kind, uri)`` of each ``--track`` value (``mlflow``, ``mlflow:URI``, ``tensorboard``); a one-line user error
    for any other."""
    parsed = []
    for spec in specs:
        kind, _, uri = spec.partition(":")
        if kind != "mlflow" and (kind != "tensorboard" or uri):
            raise UserError(f"--track {spec}: unknown tracker (use mlflow, mlflow:URI or tensorboard)")
        parsed.append((kind, uri))
    return parsed


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor the options ask for, once ``check_execution_args`` accepts them."""
    check_execution_args(args)
    return named_executor(args.executor, args.address, args.max_parallel, args.cpus_per_cell, args.gpus_per_cell)


def named_executor(
    name: str,
    address: str | None = None,
    max_parallel: int | None = None,
    cpus_per_cell: float | None = None,
    gpus_per_cell: float = 0.0,
) -> Executor:
    """The executor called ``name`` (``auto``, ``local`` or ``ray``) with these settings (None: its defaults)."""
    if name == "local":
        from aebench.execution.runner import LocalExecutor

        return LocalExecutor()
    if name == "auto":
        from aebench.execution.auto_executor import AutoExecutor

        return AutoExecutor(max_parallel, int(cpus_per_cell) if cpus_per_cell is not None else None)
    if name == "ray":
        from aebench.execution.ray_executor import RayExecutor, import_ray

        import_ray()  # missing Ray: one line saying how to install it, before any data loads
        return RayExecutor(address, max_parallel, cpus_per_cell, gpus_per_cell)
    raise UserError(f"--executor {name}: unknown executor (use auto, local or ray)")
