"""Errors and defaults named as the user typed them: the --set that broke a file, the keys valid where a key is
unknown, the bench's default experiment found outside the checkout."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import REPO

from aebench.cli import DEFAULT_BENCH_EXPERIMENT, default_experiment, main
from aebench.config import SECTIONS


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    return line


@pytest.mark.parametrize("bad", ["train.epochs=abc", "data.image_size=-3", "overrides.pca.model.latent=zero"])
def test_an_error_brought_by_a_set_names_the_set(bad: str, experiment_file, capsys: pytest.CaptureFixture[str]) -> None:
    path = experiment_file()
    line = error_of(["run", str(path), "--dry-run", "--set", "seeds=[0, 1]", "--set", bad], capsys)
    assert line.startswith(f"aebench: error: --set {bad}: ") and str(path) not in line


def test_sets_valid_only_together_pass_and_a_bad_file_is_still_named(
    experiment_file, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = experiment_file(techniques=["progressive_resizing"])
    together = ["--set", "overrides.progressive_resizing.sizes=[4, 6]", "--set", "overrides.progressive_resizing.fractions=[0.2, 0.2]"]  # fmt: skip
    assert main(["-q", "run", str(path), "--dry-run", "--out", str(tmp_path / "o"), *together]) == 0
    capsys.readouterr()
    broken = experiment_file(name="broken.yaml", train={"epochs": "many"})
    assert error_of(["run", str(broken), "--dry-run", "--set", "seeds=[0]"], capsys).startswith(
        f"aebench: error: {broken}: "
    )


def test_an_unknown_key_under_overrides_lists_the_keys_valid_there(
    experiment_file, capsys: pytest.CaptureFixture[str]
) -> None:
    line = error_of(["run", str(experiment_file()), "--dry-run", "--set", "overrides.baseline.foo=1"], capsys)
    assert "'overrides.baseline.foo'" in line and all(section in line for section in SECTIONS)


def test_the_bench_default_experiment_is_found_outside_the_checkout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert default_experiment() == REPO / DEFAULT_BENCH_EXPERIMENT
    (tmp_path / DEFAULT_BENCH_EXPERIMENT).parent.mkdir()
    (tmp_path / DEFAULT_BENCH_EXPERIMENT).write_text("name: mine\n")
    assert default_experiment() == DEFAULT_BENCH_EXPERIMENT  # the user's own copy, where they stand, comes first
