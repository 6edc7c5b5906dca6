"""Finished cells shown in the trackers people already use (``aebench run --track mlflow[:URI] | tensorboard``).

Trackers are written to by the driver after a cell's row is appended; ``results.jsonl`` stays the source of truth.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import imageio.v3 as iio
import numpy as np
import torch

from aebench.config import point_text
from aebench.errors import UserError, exception_line
from aebench.execution.options import tracker_specs
from aebench.execution.runner import CellResult, Tracker
from aebench.execution.services import require_http_answer
from aebench.execution.snapshots import grid
from aebench.files import safe_folder, writable_folder
from aebench.results.schema import METRICS, cell_folder

TRACK_HINT = "pip install -e '.[track]'"
HISTORY_SCALARS = {"train_loss": "loss/train", "test_loss": "loss/test", "val_loss": "loss/val", "lr": "lr"}
PARAMS_PER_BATCH = 100  # MLflow's limit per log_batch call
# each MLflow request: 10 s to answer, 2 retries 1 s and 2 s apart (MLflow's defaults: 120 s, 7 retries, ~4 min)
MLFLOW_LIMITS = {
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "10",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


@contextlib.contextmanager
def mlflow_limits() -> Iterator[None]:
    """``MLFLOW_LIMITS`` in ``os.environ`` (where the user set none) while a block of MLflow calls runs, the previous
    values restored after it: MLflow reads them at each request, and the process (a notebook) keeps its own."""
    previous = {name: os.environ.get(name) for name in MLFLOW_LIMITS}
    for name, value in MLFLOW_LIMITS.items():
        os.environ.setdefault(name, value)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def import_extra(module: str, package: str, flag: str) -> ModuleType:
    """An optional dependency's module, or a one-line user error naming the package and how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{flag} needs the '{package}' package: {TRACK_HINT}") from None


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 1e-3}}`` -> ``{"train.lr": 1e-3}``: the dotted keys ``--set`` understands."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def epoch_scalars(result: CellResult) -> Iterator[tuple[str, float, int]]:
    """(name, value, epoch) for each epoch's losses, LR and training throughput (images per second)."""
    n_train = result.row.get("n_train")
    for record in result.history:
        epoch = int(record["epoch"])
        for key, name in HISTORY_SCALARS.items():
            if record.get(key) is not None:
                yield name, float(record[key]), epoch
        if n_train and record.get("seconds"):
            yield "images_per_second", n_train / float(record["seconds"]), epoch


def final_scalars(row: dict[str, Any]) -> dict[str, float]:
    """The row's reported metrics (the schema's metric specs) that have a value."""
    return {f"final/{m.name}": float(row[m.name]) for m in METRICS if row.get(m.name) is not None}


def reconstruction_grid(result: CellResult) -> np.ndarray | None:
    """Rows input / reconstruction / target of the saved test samples as one uint8 picture, if any."""
    if not result.samples:
        return None
    return grid([torch.as_tensor(result.samples[k].copy()) for k in ("input", "output", "target")])


class MlflowTracker:
    """One MLflow run per cell: params = flat config, per-epoch and final metrics, tags, the reconstruction grid.

    Created before the run starts: a server that does not answer within ``SERVICE_TIMEOUT`` seconds, or a store
    MLflow cannot open, is one line and exit 2 before any work. Its requests are bounded by ``MLFLOW_LIMITS``
    (unless set in the environment; set only while the tracker calls MLflow), so a server that dies mid-run costs
    each cell seconds, never its row.
    """

    def __init__(self, uri: str, experiment: str, artifacts: Path | None = None) -> None:
        flag = f"--track mlflow:{uri}"
        if urllib.parse.urlsplit(uri).scheme in ("http", "https"):  # before importing MLflow, which takes seconds
            require_http_answer(uri, flag)
        mlflow = import_extra("mlflow", "mlflow", "--track mlflow")
        self.entities = importlib.import_module("mlflow.entities")
        try:
            with mlflow_limits():
                self.client = mlflow.MlflowClient(tracking_uri=uri)
                found = self.client.get_experiment_by_name(experiment)
                location = artifacts.resolve().as_uri() if artifacts else None
                self.experiment_id = (
                    found.experiment_id if found else self.client.create_experiment(experiment, location)
                )
        except Exception as exc:  # MLflow raises many types (MlflowException, requests', sqlalchemy's): all mean this
            raise UserError(f"{flag}: MLflow cannot use this tracking store ({exception_line(exc)})") from None

    def log_cell(self, result: CellResult) -> None:
        with mlflow_limits():
            self.log_run(result)

    def log_run(self, result: CellResult) -> None:
        """The cell as one MLflow run (call inside ``mlflow_limits``)."""
        row, entities = result.row, self.entities
        tags = {key: str(row[key]) for key in ("technique", "dataset", "seed", "status", "config_hash")}
        point = point_text((row.get("axes") or {}).items())  # the sweep point, if any: one run name per cell
        name = f"{row['dataset']}/{row['technique']}/seed{row['seed']}" + (f" {point}" if point else "")
        run_id = self.client.create_run(self.experiment_id, run_name=name, tags=tags).info.run_id
        now = int(time.time() * 1000)
        metrics = [entities.Metric(k, v, now, e) for k, v, e in epoch_scalars(result)]
        metrics += [entities.Metric(k.removeprefix("final/"), v, now, 0) for k, v in final_scalars(row).items()]
        params = [entities.Param(k, str(v)[:6000]) for k, v in flatten(result.config).items()]
        for start in range(0, max(len(params), 1), PARAMS_PER_BATCH):
            self.client.log_batch(
                run_id, metrics=metrics if start == 0 else [], params=params[start : start + PARAMS_PER_BATCH]
            )
        if row["reason"]:
            self.client.set_tag(run_id, "reason", row["reason"][:5000])
        picture = reconstruction_grid(result)
        if picture is not None:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "reconstructions.png"
                iio.imwrite(path, picture)
                self.client.log_artifact(run_id, str(path))
        self.client.set_terminated(run_id, "FINISHED" if row["status"] == "ok" else "FAILED")


class TensorboardTracker:
    """Per-cell event files under ``folder/cells/<dataset>/<technique>/seed<k>-<hash>``: per-epoch and final scalars."""

    def __init__(self, folder: Path) -> None:
        self.writer_class = import_extra("torch.utils.tensorboard", "tensorboard", "--track tensorboard").SummaryWriter
        self.folder = folder

    def log_cell(self, result: CellResult) -> None:
        row = result.row
        log_dir = safe_folder(
            self.folder, cell_folder(self.folder, row["dataset"], row["technique"], row["seed"], row["config_hash"])
        )
        writer = self.writer_class(log_dir=str(log_dir))
        try:
            for name, value, epoch in epoch_scalars(result):
                writer.add_scalar(name, value, epoch)
            for name, value in final_scalars(row).items():
                writer.add_scalar(name, value, row["epochs"])
        finally:
            writer.close()


class Trackers:
    """Several trackers as one."""

    def __init__(self, trackers: list[Tracker]) -> None:
        self.trackers = trackers

    def log_cell(self, result: CellResult) -> None:
        for tracker in self.trackers:
            tracker.log_cell(result)


def make_tracker(specs: list[str], out: Path, experiment: str) -> Tracker | None:
    """Trackers from ``--track`` values: ``mlflow`` (default store ``OUT/mlflow.db``, artifacts ``OUT/mlruns/``),
    ``mlflow:URI``, ``tensorboard`` (event files under ``OUT/tensorboard/``). None when none is asked for."""
    trackers: list[Tracker] = []
    for kind, uri in tracker_specs(specs):
        if kind == "mlflow":
            writable_folder(out, "--out")
            default = f"sqlite:///{(out / 'mlflow.db').resolve()}"
            trackers.append(MlflowTracker(uri or default, experiment, None if uri else out / "mlruns"))
        else:
            trackers.append(TensorboardTracker(out / "tensorboard"))
    return Trackers(trackers) if trackers else None
