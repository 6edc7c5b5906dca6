"""``--executor ray`` against a real local Ray on 127.0.0.1: same rows as local, a killed worker retried, Ctrl-C."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO, TINY, Interrupt, children_running, compared, killing, tiny_sweep

from aebench.execution.ray_executor import RayExecutor
from aebench.execution.runner import LocalExecutor, run_experiment
from aebench.experiment import load_experiment
from aebench.results.store import read_rows

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed (pip install -e '.[ray]')")
psutil = pytest.importorskip("psutil", reason="psutil (installed with Ray) is missing")

TASK_TITLE = "ray::execute_cell"  # the process title Ray gives a worker while it runs a cell
COMPARED = [
    *("experiment", "dataset", "technique", "seed", "status", "reason", "config_hash", "epochs", "params"),
    *("mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean", "mse_input", "n_train", "n_test", "device"),
]


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    """One local Ray (2 CPUs, 127.0.0.1) for the module, started as ``--executor ray`` starts it."""
    RayExecutor().connect(ray)
    yield
    ray.shutdown()


def running_cells() -> list[psutil.Process]:
    """This test process's Ray workers that are running a cell now."""
    return children_running(TASK_TITLE)


@pytest.mark.slow  # Ray's start (~8 s) and two fresh workers importing torch (~15 s) on 2 busy cores
def test_ray_and_local_executors_write_the_same_rows(local_ray: None, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a state dict")  # -> a `failed` row in both executors
    path = tiny_sweep(
        tmp_path,
        "same",
        techniques=["baseline", "resnet_pretrained", "feature_loss"],  # feature_loss: skipped offline
        seeds=[0, 1],
        overrides={"resnet_pretrained": {"weights": str(junk)}},
    )
    config = load_experiment(path)
    local = run_experiment(config, tmp_path / "local", Path("/nonexistent"), "cpu", LocalExecutor())
    remote = run_experiment(config, tmp_path / "ray", Path("/nonexistent"), "cpu", RayExecutor(max_parallel=2))
    assert {r["status"] for r in local} == {"ok", "failed", "skipped"}
    assert len(remote) == len(config.cells()) == 6
    assert compared(remote, COMPARED) == compared(local, COMPARED)
    assert compared(read_rows(tmp_path / "ray"), COMPARED) == compared(read_rows(tmp_path / "local"), COMPARED)
    # resume is the driver's: finished cells are skipped, the failed ones retried, by either executor
    again = run_experiment(config, tmp_path / "ray", Path("/nonexistent"), "cpu", RayExecutor(max_parallel=2))
    assert [(r["technique"], r["status"]) for r in again] == [("resnet_pretrained", "failed")] * 2


@pytest.mark.slow  # a fresh Ray worker imports torch: ~10 s on 2 busy cores
def test_a_killed_worker_is_retried_and_no_finished_cell_is_lost(
    local_ray: None, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_experiment(tiny_sweep(tmp_path, "kill", seeds=[0, 1, 2], train={**TINY["train"], "epochs": 30}))
    with caplog.at_level(logging.WARNING, logger="aebench"):
        rows, killed = killing(
            running_cells,
            1,
            lambda: run_experiment(config, tmp_path / "out", Path("/nonexistent"), "cpu", RayExecutor(max_parallel=2)),
        )
    assert len(killed) == 1
    assert "worker lost" in caplog.text and "retrying once" in caplog.text
    assert sorted(r["seed"] for r in rows) == [0, 1, 2]
    assert all(r["status"] == "ok" for r in rows)
    assert len(read_rows(tmp_path / "out")) == 3


@pytest.mark.slow  # a fresh Ray worker imports torch: ~10 s on 2 busy cores
def test_a_cell_whose_worker_dies_twice_is_recorded_failed(local_ray: None, tmp_path: Path) -> None:
    config = load_experiment(tiny_sweep(tmp_path, "twice", train={**TINY["train"], "epochs": 30}))
    rows, killed = killing(
        running_cells,
        2,
        lambda: run_experiment(config, tmp_path / "out", Path("/nonexistent"), "cpu", RayExecutor(max_parallel=1)),
    )
    assert len(killed) == 2
    (row,) = read_rows(tmp_path / "out")
    assert row == rows[0]
    assert row["status"] == "failed" and row["reason"].startswith("ray, 2 attempts: ")
    assert row["mse"] is None


@pytest.mark.slow  # a fresh Ray worker imports torch: ~10 s on 2 busy cores
def test_ctrl_c_cancels_the_running_cells_and_keeps_the_finished_rows(local_ray: None, tmp_path: Path) -> None:
    config = load_experiment(tiny_sweep(tmp_path, "cancel", seeds=[0, 1, 2], train={**TINY["train"], "epochs": 30}))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "out", Path("/nonexistent"), "cpu", RayExecutor(max_parallel=2), Interrupt())
    assert len(read_rows(tmp_path / "out")) == 1
    deadline = time.monotonic() + 10
    while running_cells() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_cells() == []


@pytest.mark.slow  # starts its own local Ray in a subprocess: ~30 s on 2 busy cores
def test_the_command_line_runs_a_sweep_on_ray(tmp_path: Path) -> None:
    path = tiny_sweep(tmp_path, "cli", seeds=[0, 1])
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    command = [sys.executable, "-m", "aebench", "run", str(path), "--out", "out", "--device", "cpu", "--no-cost"]
    proc = subprocess.run(
        [*command, "--executor", "ray", "--max-parallel", "2"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "ray: 2 cells, 1 CPU and 0.0 GPU each, at most 2 at once" in proc.stderr
    assert sorted((r["seed"], r["status"]) for r in read_rows(tmp_path / "out")) == [(0, "ok"), (1, "ok")]
    setting, header = proc.stdout.splitlines()[:2]  # the summary printed as a local run prints it
    assert setting.startswith("digits: ") and " epoch" in setting and header.split()[:2] == ["technique", "mae"]
