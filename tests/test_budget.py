"""train.budget_seconds: training stops at the budget, give or take one step, on the clock ``timed()`` reads."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
from helpers import TINY, built

from aebench.data import DatasetCache
from aebench.data.pixels import Normalizer
from aebench.execution.runner import run_experiment
from aebench.experiment import parse_experiment
from aebench.training import timing
from aebench.training.budget import phase_deadlines
from aebench.training.loop import Splits, train
from aebench.training.recipe import Phase
from aebench.training.step import TrainStep

STEP_SECONDS = 1.0  # what one training step costs on the fake clock


@pytest.fixture
def step_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """``timed()``'s clock advances by STEP_SECONDS per training step and by nothing else."""
    now = [0.0]
    monkeypatch.setattr(timing, "time", SimpleNamespace(perf_counter=lambda: now[0]))
    real_step = TrainStep.__call__

    def step(*args, **kwargs) -> float:
        now[0] += STEP_SECONDS
        return real_step(*args, **kwargs)

    monkeypatch.setattr(TrainStep, "__call__", step)


def budget_cell(technique: str, budget: float, epochs: int = 20):
    raw = {
        **TINY,
        "techniques": [technique],
        "train": {**TINY["train"], "epochs": epochs, "batch_size": 32, "budget_seconds": budget},
        "overrides": {"progressive_resizing": {"sizes": [4]}},
    }
    return parse_experiment(raw, "test").cells()[0]


def run_budget(technique: str, budget: float, epochs: int = 20):
    cell = budget_cell(technique, budget, epochs)
    data = DatasetCache(Path("/nonexistent")).prepared("digits", cell.data)
    recipe = built(cell, data.x_train)
    outcome = train(recipe, Splits(data.x_train, data.x_test), cell, Normalizer.create("dataset", data.x_train))
    return outcome, len(data.x_train) // 32  # 128 images: 4 steps an epoch


@pytest.mark.parametrize("budget", [2.5, 6.0, 9.5])
def test_training_stops_at_the_budget_within_one_step(step_clock: None, budget: float) -> None:
    outcome, steps_per_epoch = run_budget("baseline", budget)
    assert budget <= outcome.train_seconds < budget + STEP_SECONDS
    assert outcome.epochs_trained == pytest.approx(outcome.train_seconds / STEP_SECONDS / steps_per_epoch)
    assert outcome.history[-1]["epoch"] == -(-outcome.train_seconds // (STEP_SECONDS * steps_per_epoch))
    assert all("test_mse" in h for h in outcome.history)


def test_the_epochs_stay_the_cap_when_the_budget_is_larger(step_clock: None) -> None:
    outcome, steps_per_epoch = run_budget("baseline", 1000.0, epochs=2)
    assert outcome.epochs_trained == 2 and outcome.train_seconds == 2 * steps_per_epoch * STEP_SECONDS


def test_phases_share_the_budget_by_their_epochs(step_clock: None) -> None:
    phases = [Phase("small", 5, image_size=4), Phase("full", 10)]
    assert phase_deadlines(phases, 30.0) == [10.0, 30.0]
    assert phase_deadlines(phases, None) == [None, None]
    outcome, _ = run_budget("progressive_resizing", 10.5, epochs=6)  # 2 epochs at 4 px, then 4 at 8 px
    assert 10.5 <= outcome.train_seconds < 10.5 + STEP_SECONDS
    # the 4 px phase owns 10.5 * 2/6 = 3.5 s: its 4th step crosses that; the full-size phase takes the rest
    assert [(h["phase"], h["epoch"]) for h in outcome.history] == [("4px", 1), ("full", 2), ("full", 3)]


def test_the_row_records_the_budget_and_the_epochs_trained(tmp_path: Path, step_clock: None) -> None:
    config = parse_experiment(
        {**TINY, "train": {**TINY["train"], "epochs": 20, "batch_size": 32, "budget_seconds": 5.5}}, "test"
    )
    (row,) = run_experiment(config, tmp_path, Path("/nonexistent"), "cpu")
    assert row["status"] == "ok" and row["budget_seconds"] == 5.5
    assert 5.5 <= row["train_seconds"] < 5.5 + STEP_SECONDS and row["epochs_trained"] == pytest.approx(6 / 4)
