"""The run's plan: --dry-run says which cells will be skipped and why and whether each dataset is on disk;
--retry-skipped reruns cells recorded skipped once what they lacked is at hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import TINY

from aebench.cli import main
from aebench.errors import SkipCell
from aebench.execution.planning import plan
from aebench.execution.runner import run_experiment
from aebench.experiment import load_experiment
from aebench.techniques import TECHNIQUES, register_technique
from aebench.techniques.baseline import baseline
from aebench.training.recipe import BuildContext, Recipe


def test_the_dry_run_names_missing_data_and_cells_that_will_be_skipped(
    experiment_file, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = experiment_file(datasets=["digits", "cifar10"], techniques=["baseline", "resnet_pretrained"])
    assert main(["run", str(path), "--dry-run", "--out", str(tmp_path / "out"), "--data-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    data = {line.split()[1]: line for line in lines if line.startswith("  data")}
    assert "on disk" in data["digits"] and "not on disk" not in data["digits"]
    assert "not on disk" in data["cifar10"] and str(tmp_path) in data["cifar10"]
    cells = [line.split() for line in lines if line.startswith(("  todo", "  skip", "  done"))]
    assert {(c[0], c[2]) for c in cells} == {("todo", "baseline"), ("skip", "resnet_pretrained")}
    skipped = next(line for line in lines if "resnet_pretrained" in line)
    assert "HF_HUB_OFFLINE" in skipped and "overrides.resnet_pretrained.weights" in skipped


@pytest.fixture
def flaky(monkeypatch: pytest.MonkeyPatch):
    """A technique skipped while ``state['weights']`` is False (weights offline), the baseline once they are."""
    state = {"weights": False}

    @register_technique("flaky_weights")
    def flaky_weights(ctx: BuildContext) -> Recipe:
        """Needs weights that are not always at hand."""
        if not state["weights"]:
            raise SkipCell("weights offline")
        return baseline(ctx)

    yield state
    TECHNIQUES.pop("flaky_weights")


def test_retry_skipped_reruns_what_was_skipped_and_nothing_else(
    flaky: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "exp.yaml"
    spec.write_text(json.dumps({**TINY, "techniques": ["pca", "flaky_weights"]}))
    config, out = load_experiment(spec), tmp_path / "out"
    first = run_experiment(config, out, tmp_path, "cpu")
    assert [(r["technique"], r["status"]) for r in first] == [("pca", "ok"), ("flaky_weights", "skipped")]
    assert run_experiment(config, out, tmp_path, "cpu") == []  # a skipped cell is done until asked otherwise
    assert [p.done for p in plan(config, out, retry_skipped=True)] == [True, False]
    flaky["weights"] = True
    again = run_experiment(config, out, tmp_path, "cpu", retry_skipped=True)
    assert [(r["technique"], r["status"]) for r in again] == [("flaky_weights", "ok")]
    assert main(["run", str(spec), "--out", str(out), "--retry-skipped", "--dry-run"]) == 0
    assert all(line.startswith("  done") for line in capsys.readouterr().out.splitlines() if "seed" in line)


def test_the_summary_lists_each_unfinished_cell_once(
    flaky: dict, tmp_path: Path, capsys: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    spec = tmp_path / "exp.yaml"
    spec.write_text(json.dumps({**TINY, "techniques": ["pca", "flaky_weights"], "seeds": [0, 1]}))
    assert main(["run", str(spec), "--out", str(tmp_path / "out"), "--data-root", str(tmp_path)]) == 0
    captured = capsys.readouterr()
    assert captured.out.count("weights offline") == 1
    assert "flaky_weights / seeds 0, 1: skipped: weights offline" in captured.out
    assert caplog.text.count("weights offline") == 2  # one log line per cell as it finishes, none twice
