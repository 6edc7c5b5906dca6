"""``--executor`` and ``--track`` mistakes, and missing extras: one line and exit 2, before any data loads."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from aebench.cli import main
from aebench.execution.tracking import flatten


@pytest.mark.parametrize(
    ("module", "args", "message"),
    [
        ("ray", ["--executor", "ray"], "--executor ray needs Ray: pip install -e '.[ray]'"),
        ("mlflow", ["--track", "mlflow"], "--track mlflow needs the 'mlflow' package: pip install -e '.[track]'"),
        (
            "torch.utils.tensorboard",
            ["--track", "tensorboard"],
            "--track tensorboard needs the 'tensorboard' package: pip install -e '.[track]'",
        ),
    ],
)
def test_a_missing_extra_is_one_line_saying_how_to_install_it(
    module: str, args: list[str], message: str, experiment_file, tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # import fails as if the package were not installed
    assert main(["run", str(experiment_file()), "--out", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err
    assert err == f"aebench: error: {message}\n"
    assert not (tmp_path / "out" / "results.jsonl").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--executor", "local", "--max-parallel", "2"], "--max-parallel applies to --executor auto or ray only"),
        (["--address", "auto"], "--address applies to --executor ray only"),
        (["--max-parallel", "0"], "--max-parallel must be at least 1 (got 0)"),
        (
            ["--cpus-per-cell", "1.5"],
            "--cpus-per-cell must be a whole number of threads with --executor auto (got 1.5)",
        ),
        (["--executor", "ray", "--max-parallel", "0"], "--max-parallel must be at least 1 (got 0)"),
        (
            ["--executor", "ray", "--gpus-per-cell", "-1"],
            "--gpus-per-cell must be a finite number, 0 or more (got -1.0)",
        ),
        (["--cpus-per-cell", "nan"], "--cpus-per-cell must be a finite number above 0 (got nan)"),
        (["--track", "wandb"], "--track wandb: unknown tracker (use mlflow, mlflow:URI or tensorboard)"),
    ],
)
@pytest.mark.parametrize("dry_run", [[], ["--dry-run"]], ids=["run", "dry-run"])
def test_options_that_do_not_fit_are_one_line_with_exit_2(
    args: list[str], message: str, dry_run: list[str], experiment_file, tmp_path: Path, capsys
) -> None:
    """The dry run refuses what the run refuses, with the same line."""
    assert main(["run", str(experiment_file()), "--out", str(tmp_path / "out"), *args, *dry_run]) == 2
    assert capsys.readouterr().err == f"aebench: error: {message}\n"


def test_flatten_gives_the_dotted_keys_of_set() -> None:
    nested = {"train": {"lr": 1e-3, "milestones": []}, "data": {"corruption": {"kind": "none"}}, "params": {}}
    assert flatten(nested) == {"train.lr": 1e-3, "train.milestones": [], "data.corruption.kind": "none", "params": {}}
