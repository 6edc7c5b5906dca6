"""Interrupted cells resume from their last finished epoch: killed (SIGKILL) or interrupted (Ctrl-C) runs, rerun,
end with the uninterrupted run's metrics and history on CPU; the state file goes once the row is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, TINY, cell_dir

from aebench.execution.checkpoint import RESUME_FILE, ResumeFile
from aebench.execution.runner import run_experiment
from aebench.experiment import load_experiment

METRICS = ["mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean", "epochs_trained"]


def history_without_times(out: Path, technique: str) -> list[dict]:
    history = json.loads((cell_dir(out, technique) / "history.json").read_text())
    return [{k: v for k, v in record.items() if k != "seconds"} for record in history]


def experiment(tmp_path: Path, technique: str, epochs: int, **sections: Any) -> Path:
    content = {**TINY, "techniques": [technique], "train": {**TINY["train"], "epochs": epochs}, **sections}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(content))
    return path


def interrupt_after(monkeypatch: pytest.MonkeyPatch, saves: int) -> None:
    """Ctrl-C right after the ``saves``-th epoch state is written."""
    real, count = ResumeFile.save, {"n": 0}

    def save(self: ResumeFile, state: dict) -> None:
        real(self, state)
        count["n"] += 1
        if count["n"] == saves:
            raise KeyboardInterrupt

    monkeypatch.setattr(ResumeFile, "save", save)


CASES = {
    "one phase": ("baseline", 3, 1, {}),
    "phase boundary": (
        "progressive_resizing",
        4,
        2,
        {"overrides": {"progressive_resizing": {"sizes": [4], "fractions": [0.5]}}},
    ),
    "mid second phase": (
        "progressive_resizing",
        4,
        3,
        {"overrides": {"progressive_resizing": {"sizes": [4], "fractions": [0.5]}}},
    ),
    "trained, calibrated loss and a validation split": (
        "feature_loss",
        3,
        1,
        {
            "overrides": {"feature_loss": {"feature_net": "trained", "trained_epochs": 1, "term_scale": "auto"}},
            "data": {**TINY["data"], "limit_train": 160},
        },
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_interrupted_cell_resumes_to_the_uninterrupted_result(
    case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    technique, epochs, stop, sections = CASES[case]
    if technique == "feature_loss":
        sections = {**sections, "train": {**TINY["train"], "epochs": epochs, "validation_fraction": 0.25}}
    config = load_experiment(experiment(tmp_path, technique, epochs, **sections))
    (whole,) = run_experiment(config, tmp_path / "whole", Path("/nonexistent"), "cpu")
    with monkeypatch.context() as patch:
        interrupt_after(patch, stop)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(config, tmp_path / "cut", Path("/nonexistent"), "cpu")
    assert not (tmp_path / "cut" / "results.jsonl").exists() or not (tmp_path / "cut" / "results.jsonl").read_text()
    (resumed,) = run_experiment(config, tmp_path / "cut", Path("/nonexistent"), "cpu")
    assert resumed["status"] == whole["status"] == "ok"
    assert resumed["resumed_at"] == [stop] and whole["resumed_at"] is None
    assert {m: resumed[m] for m in METRICS} == {m: whole[m] for m in METRICS}
    assert history_without_times(tmp_path / "cut", technique) == history_without_times(tmp_path / "whole", technique)
    assert resumed["best_epoch"] == whole["best_epoch"] and resumed["measured"] == whole["measured"]
    assert not (cell_dir(tmp_path / "cut", technique) / RESUME_FILE).exists()  # gone once the row is made


def test_train_seconds_sum_the_pieces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_experiment(experiment(tmp_path, "baseline", 3))
    with monkeypatch.context() as patch:
        interrupt_after(patch, 2)
        with pytest.raises(KeyboardInterrupt):
            run_experiment(config, tmp_path, Path("/nonexistent"), "cpu")
    cell = next((tmp_path / "cells").rglob(RESUME_FILE)).parent
    saved = ResumeFile(cell, config.cells()[0].config_hash).load()
    (row,) = run_experiment(config, tmp_path, Path("/nonexistent"), "cpu")
    history = json.loads((cell / "history.json").read_text())
    assert row["train_seconds"] == pytest.approx(saved["outcome"]["train_seconds"] + history[-1]["seconds"])
    assert row["train_seconds"] == pytest.approx(sum(h["seconds"] for h in history))  # no prepare step here


def test_a_state_of_another_config_or_a_damaged_one_is_ignored(tmp_path: Path) -> None:
    resume = ResumeFile(tmp_path, "abc")
    resume.save({"epoch": 1})
    assert resume.load() == {"epoch": 1}
    assert ResumeFile(tmp_path, "other").load() is None
    (tmp_path / RESUME_FILE).write_bytes(b"not a torch file")
    assert resume.load() is None
    resume.remove()
    assert resume.load() is None


def aebench_run(config: Path, out: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, "-m", "aebench", "run", str(config), "--out", str(out), "--device", "cpu", "--no-cost"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_a_killed_process_resumes_its_cell_to_the_uninterrupted_result(tmp_path: Path) -> None:
    """A real process kill (SIGKILL) after the first epoch; the rerun of the same command finishes the cell with the
    metrics of an uninterrupted run (here in-process, on one thread as the subprocesses)."""
    config = experiment(tmp_path, "baseline", 4, data={"limit_train": 256, "limit_test": 48})
    (whole,) = run_experiment(load_experiment(config), tmp_path / "whole", Path("/nonexistent"), "cpu")
    cut = aebench_run(config, tmp_path / "cut")
    deadline = time.monotonic() + 600
    while not list((tmp_path / "cut").rglob(RESUME_FILE)) and cut.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    cut.send_signal(signal.SIGKILL)
    cut.wait(timeout=60)
    assert cut.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    rerun = aebench_run(config, tmp_path / "cut")
    assert rerun.wait(timeout=600) == 0, rerun.stderr.read()
    (resumed,) = [json.loads(line) for line in (tmp_path / "cut" / "results.jsonl").read_text().splitlines()]
    assert resumed["resumed_at"] and resumed["resumed_at"][0] < 4  # it did resume mid-cell
    assert {m: resumed[m] for m in METRICS} == {m: whole[m] for m in METRICS}
    assert history_without_times(tmp_path / "cut", "baseline") == history_without_times(tmp_path / "whole", "baseline")
