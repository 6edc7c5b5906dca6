"""Expands an experiment into cells and runs each through the shared train loop and evaluator."""

from __future__ import annotations

import json
import logging
import math
import subprocess
import time
import traceback
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from aebench.about import PACKAGE_DIR, __version__
from aebench.config import RECIPE_SECTIONS, CellConfig, classifier_text, dotted, dump_cell, point_text, to_plain
from aebench.data import DatasetCache, ImageData, get_dataset
from aebench.errors import CellFailure, MachineFault, SkipCell
from aebench.evaluation.classifier import ClassifierCache
from aebench.evaluation.evaluate import evaluate
from aebench.execution.checkpoint import ResumeFile, save_checkpoint
from aebench.execution.cost import CostSettings, record_cost
from aebench.execution.lock import results_lock
from aebench.execution.planning import plan
from aebench.execution.preflight import preflight
from aebench.execution.run_summary import RunSummary, summarize, write_summary
from aebench.execution.snapshots import Snapshots, save_latents
from aebench.experiment import ExperimentConfig
from aebench.files import fault_text, is_machine_fault, results_folder_checks, safe_folder, write_npz, write_text
from aebench.results.schema import EXTRA_FIELDS, METRIC_VERSION, ROW_FIELDS, cell_folder
from aebench.results.store import append_row
from aebench.techniques import build_recipe, get_technique
from aebench.training.loop import Splits, TrainOutcome, train
from aebench.training.memory import peak_memory_mb, reset_peak_memory
from aebench.training.precision import resolve_precision
from aebench.training.recipe import BuildContext
from aebench.training.timing import timed

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CellJob:
    """What a process needs to run cells of one ``aebench run``: plain, picklable settings (sent to Ray workers)."""

    out: Path
    data_root: Path
    device: str
    git_commit: str
    threads: int | None = None  # torch intra-op threads per cell; None leaves torch's default
    parallel: int = 1  # cells the executor runs at once (recorded in each row)


@dataclass
class RunContext:
    """Shared across the cells one process runs."""

    out: Path
    device: torch.device
    data: DatasetCache
    classifiers: ClassifierCache
    git_commit: str
    parallel: int = 1

    @classmethod
    def create(cls, job: CellJob) -> RunContext:
        """A fresh context (empty dataset and classifier caches) for ``job``'s cells in this process."""
        device, classifiers = resolve_device(job.device), ClassifierCache(job.out / "classifiers")
        return cls(job.out, device, DatasetCache(job.data_root), classifiers, job.git_commit, job.parallel)


@dataclass
class CellResult:
    """A cell's results row, plus what trackers show: its config, per-epoch history and a few reconstructions."""

    row: dict[str, Any]
    config: dict[str, Any] = field(default_factory=dict)  # the resolved cell config, nested as in config.yaml
    history: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, np.ndarray] = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def git_commit() -> str:
    """The aebench checkout's commit, or 'unknown' outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=PACKAGE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return result.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def validation_split(x: torch.Tensor, fraction: float, seed: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A seeded, disjoint (train, validation) split of the training images; no split for fraction 0."""
    if fraction <= 0:
        return x, None
    if fraction >= 1:
        raise ValueError(f"train.validation_fraction must be below 1 (got {fraction})")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed)).to(x.device)
    n_val = max(1, round(len(x) * fraction))
    return x[perm[n_val:]], x[perm[:n_val]]


def base_row(cell: CellConfig, device: torch.device, commit: str) -> dict[str, Any]:
    """A cell's row before training: identity, settings and provenance; metrics still empty."""
    return {
        **dict.fromkeys([*ROW_FIELDS, *EXTRA_FIELDS]),
        "experiment": cell.experiment,
        "dataset": cell.dataset,
        "dataset_source": cell.dataset_source,
        "technique": cell.technique,
        "seed": cell.seed,
        "status": "ok",
        "reason": "",
        "epochs": cell.train.epochs,
        "budget_seconds": cell.train.budget_seconds,
        "device": str(device),
        "precision": resolve_precision(cell.train.precision, device),
        "torch_version": torch.__version__,
        "git_commit": commit,
        "config_hash": cell.config_hash,
        "recipe_hash": cell.recipe_hash,
        "corruption": cell.data.corruption.kind,
        "aebench_version": __version__,
        "latent": cell.model.latent,
        "metric_version": METRIC_VERSION,
        "axes": cell.axes,
        "classifier": classifier_text(to_plain(cell.classifier)),
        "settings": dotted({name: to_plain(getattr(cell, name)) for name in RECIPE_SECTIONS}),
        **get_technique(cell.technique).facts(cell.params),
    }


def run_cell(cell: CellConfig, ctx: RunContext) -> CellResult:
    """Train and evaluate one cell; returns its row, config, history and samples (failures and skips recorded,
    not raised). Runs wherever the executor puts it; it writes the cell folder, never ``results.jsonl``."""
    start = time.perf_counter()
    folder = safe_folder(ctx.out, cell_folder(ctx.out, cell.dataset, cell.technique, cell.seed, cell.config_hash))
    write_text(folder / "config.yaml", dump_cell(cell))
    result = CellResult(base_row(cell, ctx.device, ctx.git_commit), cell.to_dict())
    row = result.row
    row.update(threads=torch.get_num_threads(), parallel_cells=ctx.parallel)
    resume = ResumeFile(folder, cell.config_hash)
    try:
        train_and_evaluate(cell, ctx, folder, result, resume)
    except SkipCell as exc:
        row.update(status="skipped", reason=str(exc))  # logged once, by the driver (log_row)
    except Exception as exc:  # a failing cell must not lose the others; its traceback is kept
        if is_machine_fault(exc):  # disk full, read-only: no later cell can do better, stop the sweep
            raise MachineFault(f"{folder}: {fault_text(exc)}; finished cells are kept in results.jsonl") from None
        write_text(folder / "error.log", traceback.format_exc())
        row.update(status="failed", reason=f"{type(exc).__name__}: {exc}".splitlines()[0])
        log.error("failed %s: traceback in %s", describe(cell), folder / "error.log")  # the reason: log_row
    row.update(cell_seconds=time.perf_counter() - start, finished_at=time.strftime("%Y-%m-%dT%H:%M:%S"))
    resume.remove()  # the row is made: a rerun starts from its status, never from a stale state
    return result


def train_and_evaluate(cell: CellConfig, ctx: RunContext, folder: Path, result: CellResult, resume: ResumeFile) -> None:
    """Fill ``result`` with the cell's metrics, history and samples; its files go to ``folder``, its state after
    each epoch to ``resume`` (picked up there when an earlier run was interrupted)."""
    data: ImageData = ctx.data.prepared(cell.source, cell.data).to(ctx.device)
    x_train, x_val = validation_split(data.x_train, cell.train.validation_fraction, cell.seed)
    y_train, _ = validation_split(data.y_train, cell.train.validation_fraction, cell.seed)  # same permutation
    build_ctx = BuildContext.for_cell(cell, data.x_train)
    normalizer = build_ctx.normalizer(ctx.device)
    recipe = build_recipe(cell.technique, build_ctx, cell.seed)
    recipe.model.to(ctx.device)
    reset_peak_memory(ctx.device)
    desc = f"{cell.dataset}/{cell.technique}/s{cell.seed}"
    snapshots = Snapshots(data.x_test, cell, normalizer, folder) if cell.train.snapshot_every else None
    splits = Splits(x_train, data.x_test, x_val, y_train, data.num_classes)
    outcome: TrainOutcome = train(recipe, splits, cell, normalizer, desc, snapshots, resume)
    train_peak_mb = peak_memory_mb(ctx.device)
    # after training: a cell skipped or failed pays nothing for it, and parallel cells train while one of them
    # trains the shared classifier (the others wait for it here, if at all)
    with timed(ctx.device) as classifier_timer:
        classifier = ctx.classifiers.get(cell, data.x_train, data.y_train, data.num_classes, normalizer)
    reset_peak_memory(ctx.device)
    with timed(ctx.device) as eval_timer:
        evaluation = evaluate(recipe.model, data.x_test, data.y_test, cell, normalizer, classifier, outcome.precision)
    if snapshots is not None:
        snapshots.write_gif()
    bad = [name for name, value in evaluation.metrics.items() if not math.isfinite(value)]
    if bad:
        raise CellFailure(f"non-finite metric {', '.join(bad)} after {outcome.steps} steps (diverged: lower train.lr)")
    names = data.classes or get_dataset(cell.source).classes
    save_latents(recipe.model, data.x_test, data.y_test, cell, normalizer, folder / "latents.npz", names)
    save_checkpoint(folder / "checkpoint.pt", cell.technique, build_ctx, recipe.model)
    write_text(folder / "history.json", json.dumps(outcome.history, indent=1, allow_nan=False))
    write_npz(folder / "samples.npz", **evaluation.samples)
    result.history, result.samples = outcome.history, evaluation.samples
    result.row.update(
        {
            **evaluation.metrics,
            "train_seconds": outcome.train_seconds,
            "compile_seconds": outcome.compile_seconds,
            "step_mode": outcome.step_mode,
            "compile_speedup": outcome.compile_speedup,
            "probe_seconds": outcome.probe_seconds,
            "eval_seconds": eval_timer.seconds,
            "classifier_seconds": classifier_timer.seconds,
            "images_per_second": outcome.images_seen / outcome.train_seconds if outcome.train_seconds else None,
            "params": sum(p.numel() for p in recipe.model.parameters()),
            "peak_memory_mb": max(train_peak_mb, peak_memory_mb(ctx.device)),
            "lr": outcome.lr,
            "best_epoch": outcome.best_epoch,
            "epochs_trained": outcome.epochs_trained,
            "n_train": len(x_train),
            "n_test": len(data.x_test),
            "channels": data.channels,
            "classes": data.num_classes,
            "image_size": data.image_size,
            "native_pixels": ctx.data.raw(cell.source).x_train[0].numel(),  # bounds the data's rank
            "measured": recipe.measured() if recipe.measured else None,
            "resumed_at": outcome.resumed_at or None,
        }
    )


def cell_classifier(cell: CellConfig, ctx: RunContext) -> torch.nn.Module:
    """The downstream classifier of ``cell``'s dataset and settings: read back from the cache, or trained once."""
    data = ctx.data.prepared(cell.source, cell.data).to(ctx.device)
    normalizer = BuildContext.for_cell(cell, data.x_train).normalizer(ctx.device)
    return ctx.classifiers.get(cell, data.x_train, data.y_train, data.num_classes, normalizer)


def failed_result(cell: CellConfig, job: CellJob, reason: str) -> CellResult:
    """The row of a cell that could not run to its end (e.g. its worker process died), built by the driver."""
    row = base_row(cell, resolve_device(job.device), job.git_commit)
    row.update(status="failed", reason=reason, threads=job.threads, parallel_cells=job.parallel)
    row["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    return CellResult(row, cell.to_dict())


def describe(cell: CellConfig | dict[str, Any]) -> str:
    """``dataset / technique / seed k`` of a cell or a row, with its sweep point if any, for log lines."""
    fields = cell if isinstance(cell, dict) else cell.to_dict()
    point = point_text((fields.get("axes") or {}).items())
    return f"{fields['dataset']} / {fields['technique']} / seed {fields['seed']}" + (f" / {point}" if point else "")


def cells_to_run(config: ExperimentConfig, out: Path, retry_skipped: bool = False) -> list[CellConfig]:
    """The experiment's cells that ``plan`` finds todo in ``out/results.jsonl``."""
    planned = plan(config, out, retry_skipped)
    todo = [p.cell for p in planned if not p.done]
    if len(todo) < len(planned):
        log.info(
            "%d of %d cells already in %s; skipping them", len(planned) - len(todo), len(planned), out / "results.jsonl"
        )
    return todo


def log_row(number: int, total: int, row: dict[str, Any]) -> None:
    """One line per finished cell: its metrics when ok, else its status and reason."""
    head = f"[{number}/{total}] {describe(row)}"
    if row["status"] != "ok":
        log.warning("%s: %s: %s", head, row["status"], row["reason"])
        return
    log.info(
        "%s: mse %.5f  mae %.4f  acc %.4f  (clean %.4f)  train %.1fs",
        head,
        row["mse"],
        row["mae"],
        row["accuracy"],
        row["accuracy_clean"],
        row["train_seconds"],
    )


class Executor(Protocol):
    """Runs cells and yields each one's result as it finishes, in any order (the driver has checked the data)."""

    def run(self, cells: list[CellConfig], job: CellJob) -> Iterator[CellResult]: ...


class Tracker(Protocol):
    """Shows finished cells in an experiment tracker; ``results.jsonl`` stays the source of truth."""

    def log_cell(self, result: CellResult) -> None: ...


class LocalExecutor:
    """Cells one after another in this process (with ``job.threads`` torch threads, else torch's default)."""

    def run(self, cells: list[CellConfig], job: CellJob) -> Iterator[CellResult]:
        ctx = RunContext.create(job)
        default = torch.get_num_threads()
        torch.set_num_threads(job.threads or default)
        try:
            for cell in cells:
                log.info("running %s", describe(cell))
                yield run_cell(cell, ctx)
        finally:
            torch.set_num_threads(default)


@dataclass
class Ran:
    """What ``run_experiment`` did: the rows written now, and the experiment's summary over all its rows."""

    written: list[dict[str, Any]]
    summary: RunSummary


def run_sweep(
    config: ExperimentConfig,
    out: Path,
    data_root: Path,
    device: str,
    executor: Executor | None = None,
    tracker: Tracker | None = None,
    retry_skipped: bool = False,
    cost: CostSettings | None = None,
) -> Ran:
    """Run every cell not already finished in ``out/results.jsonl`` (``retry_skipped``: cells recorded skipped
    run again too), then write the summary files (``write_summary``) and, with ``cost``, the controlled cost
    measurement (``out/cost.json``, see ``record_cost_or_warn``); returns the rows written now and the summary
    (computed once).

    The folder must hold no symbolic link (nothing is written outside it) and is locked for the run (a second run
    on it is a UserError naming the holder), and every dataset and cell setting is checked before any training
    (``preflight``), so bad input fails before compute is spent.
    The executor runs the cells (here, or as Ray tasks) and hands back results as they finish; this driver is
    the single writer of ``results.jsonl``, so resume and failure rows are the same for every executor.
    """
    results_folder_checks(out)
    with results_lock(out):
        todo = cells_to_run(config, out, retry_skipped)
        preflight(todo, DatasetCache(data_root))
        torch.backends.cudnn.benchmark = True  # CUDA: the fastest convolution kernels per shape (no effect on CPU)
        job = CellJob(out, data_root, device, git_commit())
        written = []
        with closing((executor or LocalExecutor()).run(todo, job)) as results:
            for number, result in enumerate(results, 1):
                append_row_or_fault(out, result.row)
                written.append(result.row)
                log_row(number, len(todo), result.row)
                if tracker is not None:
                    try:
                        tracker.log_cell(result)
                    except Exception as exc:  # the row is written; a tracker outage must not stop the sweep
                        log.warning("tracking %s failed: %s", describe(result.row), exc)
        summary = summarize(config, out)
        write_summary(summary, out)
        if cost is not None:
            record_cost_or_warn(config, out, data_root, resolve_device(device), cost)
    return Ran(written, summary)


def run_experiment(*args: Any, **kwargs: Any) -> list[dict[str, Any]]:
    """``run_sweep`` (same arguments), returning only the rows written now (what the bench and the tests count)."""
    return run_sweep(*args, **kwargs).written


def record_cost_or_warn(
    config: ExperimentConfig, out: Path, data_root: Path, device: torch.device, settings: CostSettings
) -> None:
    """The run's last act: the controlled cost record (kept where it is of these recipes on this machine). A
    failure is a warning: the rows and the summary are written already, and stay as they are."""
    try:
        record_cost(config, out, data_root, device, settings)
    except Exception as exc:
        log.warning(
            "cost measurement failed (%s: %s); the rows are kept. Measure it again with: aebench bench --cost "
            "--experiment FILE --out %s",
            type(exc).__name__, str(exc).splitlines()[0] if str(exc) else "", out,
        )  # fmt: skip


def append_row_or_fault(out: Path, row: dict[str, Any]) -> None:
    """Append a row; a full or unwritable disk is a MachineFault that keeps the earlier rows."""
    try:
        append_row(out, row)
    except OSError as exc:
        raise MachineFault(f"{out / 'results.jsonl'}: {fault_text(exc)}; earlier rows are kept") from None
