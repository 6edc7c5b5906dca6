"""The Python API (``aebench.run``, ``aebench.report``, ``aebench.load_results``): what the command line does, a
notebook can do; the command line is a thin layer over it. Heavy modules load when a function is called."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from aebench.errors import UserError

if TYPE_CHECKING:
    import pandas as pd

    from aebench.execution.cost import CostSettings
    from aebench.execution.run_summary import RunSummary
    from aebench.execution.runner import Executor
    from aebench.experiment import ExperimentConfig

DEFAULT_RESULTS = Path("results")  # results/<experiment name> when no folder is given
DEVICES = ("auto", "cpu", "cuda")


def run(
    experiment: str | Path,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    device: str = "auto",
    sets: Sequence[str] = (),
    executor: Executor | str | None = None,
    track: Sequence[str] = (),
    retry_skipped: bool = False,
    cost: CostSettings | bool = True,
) -> pd.DataFrame:
    """Run an experiment file as ``aebench run`` does (resuming: finished cells are kept) and write what it
    writes (``results.jsonl``, cell folders, ``summary.csv``, ``summary.md``); returns the experiment's rows, one
    per cell of its current config, as a DataFrame: with a ``sweep``, one column per axis, named by its key
    (``model.latent``), beside each row's ``axes``.

    ``sets``: ``--set`` overrides (``["train.epochs=2"]``); ``executor``: ``"auto"`` (default: parallel cells on
    a CPU where that pays), ``"local"``, ``"ray"`` or an executor object (e.g. ``RayExecutor(max_parallel=2)``);
    ``track``: ``--track`` values (``["tensorboard"]``); ``retry_skipped``: rerun cells recorded skipped (weights
    or data now at hand); ``cost``: after the cells, each technique's training cost measured against the
    baseline's on this machine into ``cost.json`` (True: ``DEFAULT_COST``; a ``CostSettings``; False: not).
    """
    from aebench.experiment import load_experiment

    config = load_experiment(Path(experiment), list(sets))
    return run_summarized(config, out, data_root, device, executor, track, retry_skipped, cost).rows


def run_summarized(
    config: ExperimentConfig,
    out: str | Path | None = None,
    data_root: str | Path | None = None,
    device: str = "auto",
    executor: Executor | str | None = None,
    track: Sequence[str] = (),
    retry_skipped: bool = False,
    cost: CostSettings | bool = True,
) -> RunSummary:
    """``run`` for a loaded experiment, returning its summary (rows, table, paired tests): what the CLI prints."""
    from aebench.execution import cost as costs
    from aebench.execution.runner import run_sweep

    folder = results_folder(config, out)
    check_device(device)
    root = data_folder(data_root)
    tracker = None
    if track:
        from aebench.execution.tracking import make_tracker

        tracker = make_tracker(list(track), folder, config.name)
    settings = costs.DEFAULT_COST if cost is True else cost or None
    return run_sweep(config, folder, root, device, make_executor(executor), tracker, retry_skipped, settings).summary


def data_folder(data_root: str | Path | None) -> Path:
    """``data_root``, or the default (``$AEBENCH_DATA`` or the per-user cache); a UserError when it is a file."""
    from aebench.data import default_data_root

    root = Path(data_root) if data_root is not None else default_data_root()
    if root.exists() and not root.is_dir():
        raise UserError(f"--data-root {root}: is a file, not a folder")
    return root


def results_folder(config: ExperimentConfig, out: str | Path | None) -> Path:
    """``out``, or ``results/<experiment name>`` below the working directory."""
    return Path(out) if out is not None else DEFAULT_RESULTS / config.name


def check_device(name: str) -> None:
    """An unknown device, or ``cuda`` where there is none, is a user error (torch loads only to check ``cuda``)."""
    if name not in DEVICES:
        raise UserError(f"--device {name}: unknown device (use {', '.join(DEVICES)})")
    if name == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here (use --device cpu or auto)")


def make_executor(executor: Executor | str | None) -> Executor:
    """An executor object from a name (``auto``, the default; ``local``; ``ray`` with its defaults); an object
    passes through."""
    from aebench.execution.options import named_executor

    return named_executor(executor or "auto") if executor is None or isinstance(executor, str) else executor


def report(results: Iterable[str | Path] | None = None, out: str | Path = "report", force: bool = False) -> Path:
    """Regenerate the report (tables, figures, ``README.md``, ``report.tex``) in ``out`` from results folders
    (default: every ``results/*/``), as ``aebench report`` does; returns the path of ``out/README.md``.
    ``force``: write even where ``out`` holds the report of other results (it refuses otherwise)."""
    from aebench.reporting.make import make_report

    return make_report(results, out, force)


def statistics(results: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """The report's statistics frame of results folders: one row per (table, metric, technique) with n, mean, sd,
    the 95 % confidence and prediction intervals, the paired difference from the baseline, its p and Holm p, and
    the standing ('best', 'tie'); where a folder has a cost record, its controlled cost (metric 'cost_ratio': the
    step's ratio to the baseline's with its CI; 'fit_seconds', 'one_off_seconds'); on a sweep, each technique against
    the reference at each point of its axis (``series``, ``axis``, ``point``, ``ref_*``: Holm over the points); the
    numbers every table, figure and sentence of the report shows."""
    from aebench.reporting.stats import analyse

    paths = [Path(results)] if isinstance(results, (str, Path)) else [Path(f) for f in results]
    return analyse(paths)[3]


def load_results(folders: str | Path | Iterable[str | Path]) -> pd.DataFrame:
    """The rows of one results folder (or several), one per cell: its latest finished row, else its latest."""
    from aebench.results.store import load_results as load

    paths = [Path(folders)] if isinstance(folders, (str, Path)) else [Path(f) for f in folders]
    return load(paths)
