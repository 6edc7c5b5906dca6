"""``--track mlflow`` and ``--track tensorboard``: a tiny run's cells read back with MLflow's and TensorBoard's own tools."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from helpers import TINY

from aebench.execution.runner import run_experiment
from aebench.execution.tracking import make_tracker
from aebench.experiment import ExperimentConfig, parse_experiment
from aebench.results.schema import cell_folder

mlflow = pytest.importorskip("mlflow", reason="the [track] extra is not installed (pip install -e '.[track]')")
event_accumulator = pytest.importorskip(
    "tensorboard.backend.event_processing.event_accumulator",
    reason="the [track] extra is not installed (pip install -e '.[track]')",
)

EPOCHS = 2


def tracked_run(out: Path, trackers: list[str]) -> list[dict[str, Any]]:
    """TINY with two epochs and two seeds, run with the given trackers; returns its rows."""
    raw = {**TINY, "seeds": [0, 1], "train": {**TINY["train"], "epochs": EPOCHS}}
    config: ExperimentConfig = parse_experiment(raw, "tracked")
    return run_experiment(config, out, Path("/nonexistent"), "cpu", tracker=make_tracker(trackers, out, config.name))


@pytest.mark.slow  # creating MLflow's sqlite store runs its schema migrations: ~10 s on 2 busy cores
def test_mlflow_runs_read_back_with_search_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "out"
    rows = tracked_run(out, ["mlflow"])
    uri = f"sqlite:///{(out / 'mlflow.db').resolve()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    runs = mlflow.search_runs(experiment_names=["tiny"]).sort_values("tags.seed")
    assert len(runs) == len(rows) == 2
    for (_, run), row in zip(runs.iterrows(), rows):
        assert run["status"] == "FINISHED"
        assert (run["tags.technique"], run["tags.dataset"], run["tags.seed"]) == (
            "baseline",
            "digits",
            str(row["seed"]),
        )
        assert run["tags.status"] == "ok" and run["tags.config_hash"] == row["config_hash"]
        assert run["params.train.lr"] == "0.003" and run["params.model.latent"] == "8"
        assert run["metrics.mse"] == pytest.approx(row["mse"]) and run["metrics.accuracy"] == pytest.approx(
            row["accuracy"]
        )
        client = mlflow.MlflowClient(uri)
        assert [m.step for m in client.get_metric_history(run["run_id"], "loss/test")] == list(range(1, EPOCHS + 1))
        assert [a.path for a in client.list_artifacts(run["run_id"])] == ["reconstructions.png"]
        assert run["artifact_uri"].startswith((out / "mlruns").resolve().as_uri())


def test_tensorboard_event_files_read_back(tmp_path: Path) -> None:
    out = tmp_path / "out"
    rows = tracked_run(out, ["tensorboard"])
    for row in rows:
        folder = cell_folder(out / "tensorboard", "digits", "baseline", row["seed"], row["config_hash"])
        events = event_accumulator.EventAccumulator(str(folder))
        events.Reload()
        scalars = events.Tags()["scalars"]
        assert {"loss/train", "loss/test", "images_per_second", "lr", "final/mse"} <= set(scalars)
        assert [e.step for e in events.Scalars("loss/test")] == list(range(1, EPOCHS + 1))
        assert all(e.value > 0 for e in events.Scalars("images_per_second"))
        (final,) = events.Scalars("final/mse")
        assert final.value == pytest.approx(row["mse"], rel=1e-6) and final.step == EPOCHS
