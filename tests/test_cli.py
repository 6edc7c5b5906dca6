"""The real command line: the demo on a tiny budget end to end, `list`, and user errors as one line with exit 2."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import DEMO, REPO, cell_dir

from aebench.cli import main
from aebench.config import dump_cell
from aebench.data import DATASETS
from aebench.execution.checkpoint import load_checkpoint
from aebench.experiment import load_experiment
from aebench.reporting.make import relative
from aebench.results.schema import ROW_FIELDS
from aebench.techniques import TECHNIQUES

TINY_SETS = ["train.epochs=1", "classifier.epochs=1"]


def aebench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``python -m aebench ARGS`` in a fresh process, importing this checkout, offline, writing only under ``cwd``."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "AEBENCH_DATA": str(cwd / "data")}
    return subprocess.run(
        [sys.executable, "-m", "aebench", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The demo experiment run once through the CLI with one epoch everywhere."""
    cwd = tmp_path_factory.mktemp("demo")
    sets = [arg for item in TINY_SETS for arg in ("--set", item)]
    return aebench(
        "run", str(DEMO), "--out", "out", "--device", "cpu", "--cost-seconds", "0.5", *sets, cwd=cwd
    ), cwd / "out"


def test_demo_exits_0_and_prints_the_summary(demo) -> None:
    proc, _ = demo
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "digits/baseline/s0: epoch 1/1, phase train: train loss" in proc.stderr  # progress without a terminal
    assert "classifier digits: epoch 1/1" in proc.stderr
    lines = proc.stdout.splitlines()
    config = load_experiment(DEMO)
    assert lines[0].startswith(f"{config.datasets[0]}: 1 epoch · ") and "training images" in lines[0]  # setting first
    assert "test images" in lines[0]
    assert "1 channel ·" in lines[0] and "classifier cnn, 1 epoch, lr 0.002" in lines[0]  # the row names it
    header = lines[1].split()
    assert header[:2] == ["technique", "mae"] and "accuracy" in header and header[-1] == "flags"
    for technique in config.techniques:
        assert any(line.split()[:1] == [technique] for line in lines[2:])


def test_demo_writes_one_ok_row_per_planned_cell(demo) -> None:
    _, out = demo
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    cells = load_experiment(DEMO, TINY_SETS).cells()
    assert len(rows) == len(cells) == 6  # 2 techniques x 3 seeds
    assert all(set(ROW_FIELDS) <= set(r) and r["status"] == "ok" and r["epochs"] == 1 for r in rows)
    # the hashes written by the CLI process match this process's: config_hash is stable across runs
    assert {(r["technique"], r["seed"], r["config_hash"]) for r in rows} == {
        (c.technique, c.seed, c.config_hash) for c in cells
    }
    # one recipe per technique across its seeds, one per technique
    assert {(r["technique"], r["recipe_hash"]) for r in rows} == {(c.technique, c.recipe_hash) for c in cells}
    assert len({r["recipe_hash"] for r in rows}) == 2


def test_demo_writes_summaries(demo) -> None:
    _, out = demo
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary["technique"]) == sorted(load_experiment(DEMO).techniques)
    assert (summary["seeds"] == 3).all()
    markdown = (out / "summary.md").read_text()
    assert markdown.startswith("|") and all(t in markdown for t in summary["technique"])


@pytest.mark.parametrize("technique", ["baseline", "pca"])
def test_demo_cell_folders_rebuild_their_models(demo, technique: str) -> None:
    _, out = demo
    cell = next(c for c in load_experiment(DEMO, TINY_SETS).cells() if c.technique == technique and c.seed == 0)
    folder = cell_dir(out, technique)
    assert yaml.safe_load((folder / "config.yaml").read_text()) == yaml.safe_load(dump_cell(cell))
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == (1 if technique == "baseline" else 0)  # PCA is fitted, not trained by epochs
    samples = np.load(folder / "samples.npz")
    assert samples["output"].shape == samples["target"].shape == (8, 1, 8, 8)
    model, normalizer = load_checkpoint(folder / "checkpoint.pt")
    with torch.no_grad():
        again = model(normalizer(torch.from_numpy(samples["target"]))).clamp(0, 1).numpy()
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    row = next(r for r in rows if r["technique"] == technique and r["seed"] == 0)
    atol = 1e-5 if row["precision"] == "fp32" else 2e-2  # the saved outputs were computed under bf16 autocast
    np.testing.assert_allclose(again, samples["output"], atol=atol)


def test_list_names_every_technique_with_its_options_and_every_dataset_with_its_state(tmp_path: Path) -> None:
    proc = aebench("list", "--data-root", str(tmp_path / "empty"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    names = [line.split()[0] for line in lines if line.startswith("  ") and not line.startswith("   ")]
    assert names == [*TECHNIQUES, *DATASETS]
    assert all(info.description for info in TECHNIQUES.values())
    options = [line.split()[0] for line in lines if line.startswith("   ")]
    expected = [f.name for info in TECHNIQUES.values() for f in dataclasses.fields(info.params)]
    assert options == expected and "trained_epochs" in options
    state = {line.split()[0]: line.split()[1] for line in lines if line.split()[0] in DATASETS}
    assert state["digits"] == "[found" and state["mnist"] == "[needs" and state["cifar10"] == "[needs"


def test_a_user_error_in_a_subprocess_is_one_line_with_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ndatasets: [digits]\ntechniques: [baseline]\ntrain: {epochs: 0}\n")
    proc = aebench("run", str(bad), cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [f"aebench: error: {bad}: 'train.epochs' must be >= 1 (got 0)"]
    assert proc.stdout == ""


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_user_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(DEMO), "--device", "cuda", "--dry-run"]) == 2
    assert "--device cuda" in capsys.readouterr().err


def test_report_on_a_folder_without_results_is_a_user_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "report")]) == 2
    assert f"{tmp_path}: no results.jsonl" in capsys.readouterr().err


def test_missing_data_offline_stops_the_run_before_training(
    experiment_file, tmp_path: Path, offline, capsys: pytest.CaptureFixture[str]
) -> None:
    path = experiment_file(datasets=["digits", "mnist"])
    out = tmp_path / "out"
    assert (
        main(["-q", "run", str(path), "--out", str(out), "--data-root", str(tmp_path / "data"), "--device", "cpu"]) == 2
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(tmp_path / "data" / "MNIST" / "raw") in err[0] and "train-images-idx3-ubyte" in err[0]
    assert not (out / "results.jsonl").exists()  # the digits cells did not run first


def test_report_command_paths_are_relative_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert relative(tmp_path / "results" / "fashion") == "results/fashion"
    assert relative(Path("results/fashion")) == "results/fashion"
    assert relative(Path("/elsewhere/run")) == "/elsewhere/run"
