"""Nothing executes from a file, nothing dishonest is recorded, nothing finished is lost under machine faults."""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from helpers import REPO, TINY, built

from aebench.cli import main
from aebench.data import DatasetCache
from aebench.data.formats import read_cifar_batch
from aebench.data.pixels import Normalizer
from aebench.errors import CellFailure, UserError
from aebench.evaluation.classifier import ClassifierCache, classifier_key
from aebench.execution.checkpoint import load_checkpoint
from aebench.execution.lock import results_lock
from aebench.execution.runner import run_experiment
from aebench.experiment import parse_experiment
from aebench.files import atomic_write
from aebench.reporting.build import write_report
from aebench.results.schema import RESULTS_FILE, ROW_FIELDS
from aebench.results.store import append_row, current_rows, load_results, read_rows
from aebench.results.summary import finished
from aebench.training.loop import Splits, train


class Payload:
    """Unpickling this creates ``marker``: the proof that a file ran code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (str(self.marker), "w"))


def strict_rows(out: Path) -> list[dict[str, Any]]:
    """Every line of results.jsonl parsed as strict JSON (NaN / Infinity tokens fail)."""

    def reject(name: str) -> None:
        raise AssertionError(f"non-standard JSON token {name}")

    return [json.loads(line, parse_constant=reject) for line in (out / RESULTS_FILE).read_text().splitlines()]


def experiment(**changes: Any):
    return parse_experiment({**TINY, **changes}, "test.yaml")


def row(**values: Any) -> dict[str, Any]:
    base = dict.fromkeys(ROW_FIELDS)
    base.update(experiment="e", dataset="digits", technique="pca", seed=0, status="ok", reason="", config_hash="h1")
    return {**base, **values}


# --------------------------------------------------------------------------- nothing executes from a file


def test_crafted_cifar_pickle_never_runs_its_payload(tmp_path: Path) -> None:
    crafted = pickle.dumps({b"data": Payload(tmp_path / "proof"), b"labels": [0]}, protocol=2)
    pickle.loads(crafted)  # the payload is live: plain pickle runs it
    assert (tmp_path / "proof").exists()
    (tmp_path / "proof").unlink()
    (tmp_path / "test_batch").write_bytes(crafted)
    with pytest.raises(UserError, match="refused global"):
        read_cifar_batch(tmp_path / "test_batch")
    assert not (tmp_path / "proof").exists()


def test_crafted_checkpoint_never_runs_its_payload(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({"technique": "pca", "context": Payload(tmp_path / "proof"), "state_dict": {}}, path)
    with pytest.raises(UserError, match="not a loadable aebench checkpoint"):
        load_checkpoint(path)
    assert not (tmp_path / "proof").exists()
    torch.load(path, weights_only=False)  # the payload is live: an unrestricted load runs it
    assert (tmp_path / "proof").exists()


@pytest.mark.parametrize("damage", ["garbage", "crafted"])
def test_damaged_classifier_cache_is_discarded_and_retrained(tmp_path: Path, damage: str) -> None:
    cell = experiment().cells()[0]
    data = DatasetCache(Path("/nonexistent")).prepared("digits", cell.data)
    cache = ClassifierCache(tmp_path)
    path = tmp_path / f"{classifier_key(cell)}.pt"
    if damage == "garbage":
        path.write_bytes(b"\x00 not a state dict")
    else:
        torch.save({"weight": Payload(tmp_path / "proof")}, path)
    normalizer = Normalizer.create("dataset", data.x_train)
    model = cache.get(cell, data.x_train, data.y_train, 10, normalizer)
    assert cache.trained == 1 and not (tmp_path / "proof").exists()
    assert torch.load(path, weights_only=True).keys() == model.state_dict().keys()  # the cache is whole again


# --------------------------------------------------------------------------- honest cells


def test_a_diverging_cell_fails_with_epoch_and_step_and_the_sweep_goes_on(tmp_path: Path) -> None:
    config = experiment(techniques=["baseline", "pca"], train={**TINY["train"], "lr": 1e20})
    rows = {r["technique"]: r for r in run_experiment(config, tmp_path, Path("/nonexistent"), "cpu")}
    assert rows["baseline"]["status"] == "failed"
    assert "is nan at epoch 1, step" in rows["baseline"]["reason"] or "is inf at epoch 1" in rows["baseline"]["reason"]
    assert rows["pca"]["status"] == "ok"
    assert [r["status"] for r in strict_rows(tmp_path)] == ["failed", "ok"]
    assert list(finished(load_results([tmp_path]))["technique"]) == ["pca"]


def test_training_zero_steps_fails_the_cell() -> None:
    cell = experiment().cells()[0]
    one_image = torch.zeros(1, 1, 8, 8, dtype=torch.uint8)
    recipe = built(cell, one_image)
    with pytest.raises(CellFailure, match="trained 0 steps"):
        train(recipe, Splits(one_image, one_image), cell, Normalizer(torch.zeros(1), torch.ones(1)))


def test_non_finite_numbers_are_written_as_null(tmp_path: Path) -> None:
    append_row(tmp_path, row(mse=float("nan"), psnr=float("inf")))
    (stored,) = strict_rows(tmp_path)
    assert stored["mse"] is None and stored["psnr"] is None


def test_the_store_prefers_the_done_row_of_the_current_config_hash() -> None:
    old_ok, new_failed = row(config_hash="h1"), row(config_hash="h2", status="failed", reason="boom")
    key = ("e", "digits", "pca", 0)
    assert current_rows([old_ok, new_failed]) == [new_failed]  # the latest config is the current one
    assert current_rows([old_ok, new_failed], {key: "h1"}) == [old_ok]
    new_ok, retry_failed = row(config_hash="h2", mae=0.1), row(config_hash="h2", status="failed", reason="x")
    assert current_rows([old_ok, new_ok, retry_failed]) == [new_ok]


def test_unreadable_and_unsafe_rows_are_skipped_with_a_warning(tmp_path: Path, caplog) -> None:
    append_row(tmp_path, row())
    with open(tmp_path / RESULTS_FILE, "ab") as fh:
        fh.write(b"[1, 2]\n\xff\xfe not utf-8\n")
        fh.write(b'{"mse": NaN}\n')
        fh.write((json.dumps(row(dataset="../..", seed=1)) + "\n").encode())
    with caplog.at_level(logging.WARNING):
        assert [r["seed"] for r in read_rows(tmp_path)] == [0]
    assert caplog.text.count("invalid row skipped") == 4


# --------------------------------------------------------------------------- one writer per results folder


def test_a_second_run_on_a_locked_folder_exits_2_naming_the_holder(tmp_path: Path, capsys) -> None:
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump(TINY))
    out = tmp_path / "out"
    out.mkdir()
    with results_lock(out):
        assert main(["-q", "run", str(exp), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"in use by another aebench run (pid {os.getpid()}" in err[0]
    assert not (out / RESULTS_FILE).exists()


# --------------------------------------------------------------------------- faults of the machine


def test_disk_full_mid_sweep_is_one_line_keeps_finished_rows_and_leaves_no_tmp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    real_save, calls = torch.save, {"checkpoints": 0}

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        if str(f).endswith(".tmp") and Path(f).name.startswith("checkpoint.pt."):
            calls["checkpoints"] += 1
            if calls["checkpoints"] == 2:  # the second cell's checkpoint hits a full disk half-way
                Path(f).write_bytes(b"partial")
                raise OSError(errno.ENOSPC, "No space left on device", str(f))
        real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", save)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({**TINY, "techniques": ["pca"], "seeds": [0, 1, 2]}))
    out = tmp_path / "out"
    assert main(["-q", "run", str(exp), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "No space left on device" in err[0]
    assert [(r["seed"], r["status"]) for r in strict_rows(out)] == [(0, "ok")]
    assert not list(out.rglob("*.tmp"))


def test_a_short_write_leaves_only_whole_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    append_row(tmp_path, row(seed=0))
    before = (tmp_path / RESULTS_FILE).read_bytes()
    real_write = os.write
    monkeypatch.setattr("aebench.results.store.os.write", lambda fd, data: real_write(fd, data[: len(data) // 2]))
    with pytest.raises(OSError, match="short write"):
        append_row(tmp_path, row(seed=1))
    assert (tmp_path / RESULTS_FILE).read_bytes() == before


def test_an_interrupted_atomic_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "history.json"
    target.write_text("old")

    def fail(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        atomic_write(target, fail)
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_report_skips_damaged_cell_files_with_a_warning(tmp_path: Path, caplog) -> None:
    out = tmp_path / "res"
    run_experiment(experiment(techniques=["pca"], seeds=[0, 1]), out, Path("/nonexistent"), "cpu")
    for folder in sorted((out / "cells" / "digits" / "pca").iterdir()):
        (folder / "history.json").write_text('[{"epoch": 1, "test_')
        (folder / "samples.npz").write_bytes((folder / "samples.npz").read_bytes()[:50])
    np.savez(folder / "samples.npz", input=np.array([object()]), target=np.zeros(1), output=np.zeros(1))
    with open(out / RESULTS_FILE, "ab") as fh:
        fh.write(b"\xff not utf-8\n[]\n")
    with caplog.at_level(logging.WARNING):
        readme = write_report([out], tmp_path / "report", command="test")
    assert "| pca" in next(readme.parent.glob("*_digits.md")).read_text()
    assert "history.json: unreadable" in caplog.text and "samples.npz: unreadable" in caplog.text


@pytest.mark.slow
def test_killing_a_sweep_loses_nothing_finished_and_retrains_nothing(tmp_path: Path) -> None:
    spec = {**TINY, "techniques": ["pca", "baseline"], "seeds": [0, 1], "train": {**TINY["train"], "epochs": 30}}
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(spec))
    command = [sys.executable, "-m", "aebench", "-q", "run", "exp.yaml", "--out", "out", "--device", "cpu", "--no-cost"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    results = tmp_path / "out" / RESULTS_FILE
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (results.is_file() and results.read_text().count("\n") >= 1) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = strict_rows(tmp_path / "out")
    assert 1 <= len(before) < 4, "the kill should land mid-sweep"
    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    after = strict_rows(tmp_path / "out")
    assert after[: len(before)] == before  # nothing finished was lost or rewritten
    cells = [(r["technique"], r["seed"]) for r in after]
    assert sorted(cells) == sorted({*cells}) and len(cells) == 4  # every cell once: nothing retrained


def test_a_closed_pipe_is_quiet(tmp_path: Path) -> None:
    """The reader (``true``) has exited before aebench prints: every write meets a closed pipe."""
    script = f"{sys.executable} -m aebench run {REPO / 'experiments' / 'demo.yaml'} --dry-run | true"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        ["bash", "-o", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0 and done.stderr == ""
