"""Parallel cells on one CPU (``--executor auto``): the rows of one cell after another, the classifier trained once,
a dead worker's cell run again alone then recorded, Ctrl-C; the plan from cores, load and memory; workers that set
their threads before torch loads."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import REPO, TINY, Interrupt, children_running, compared, killing, tiny_sweep

from aebench.data import DatasetCache
from aebench.evaluation import classifier as classifier_module
from aebench.evaluation.classifier import ClassifierCache
from aebench.execution import auto_executor, machine
from aebench.execution.auto_executor import MIN_PARALLEL_IMAGES, AutoExecutor, plan_cells
from aebench.execution.cell_memory import cell_memory_mb
from aebench.execution.machine import Machine
from aebench.execution.pool_executor import PoolExecutor
from aebench.execution.runner import CellJob, LocalExecutor, run_experiment
from aebench.execution.worker import WAIT_POLICY, openmp_env
from aebench.experiment import load_experiment, parse_experiment
from aebench.results.store import read_rows

NO_DATA = Path("/nonexistent")  # digits ship with scikit-learn
COMPARED = [
    *("experiment", "dataset", "technique", "seed", "status", "reason", "config_hash", "epochs", "params", "threads"),
    *("mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean", "mse_input", "n_train", "n_test", "lr"),
]


def workers_of_this_test() -> list[Any]:
    """Spawned pool workers under this process (their command line runs multiprocessing's spawn_main)."""
    return children_running("spawn_main")


# --------------------------------------------------------------------------- the same rows, in parallel


def test_parallel_cells_write_the_rows_of_one_cell_after_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture[str]
) -> None:
    config = load_experiment(tiny_sweep(tmp_path, "same", techniques=["baseline", "pca"], seeds=[0, 1]))
    with caplog.at_level(logging.INFO, logger="aebench"):
        one = run_experiment(config, tmp_path / "one", NO_DATA, "cpu", AutoExecutor(max_parallel=1, threads=1))
        two = run_experiment(config, tmp_path / "two", NO_DATA, "cpu", PoolExecutor(workers=2, threads=1))
    assert [r["status"] for r in two] == ["ok"] * 4
    assert compared(two, COMPARED) == compared(
        one, COMPARED
    )  # every metric equal: a cell's result does not depend on its neighbours
    assert {r["parallel_cells"] for r in one} == {1} and {r["parallel_cells"] for r in two} == {2}
    assert compared(read_rows(tmp_path / "two"), COMPARED) == compared(
        one, COMPARED
    )  # the driver wrote what the workers returned
    trained = "training the digits classifier once"
    assert caplog.text.count(trained) == 1  # the sequential run, in this process
    assert capfd.readouterr().err.count(trained) == 1  # the parallel run: one worker trained it, once
    assert run_experiment(config, tmp_path / "two", NO_DATA, "cpu", PoolExecutor(2, 1)) == []  # resume


def test_parallel_workers_train_a_shared_classifier_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = classifier_module.train_classifier

    def slow(*args: Any, **kwargs: Any) -> torch.nn.Module:
        calls.append(1)
        time.sleep(0.5)  # long enough for the second cache to ask while the first trains
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier_module, "train_classifier", slow)
    cell = parse_experiment(TINY, "t").cells()[0]
    data = DatasetCache(NO_DATA).prepared("digits", cell.data)
    from aebench.data.pixels import Normalizer

    normalizer = Normalizer.create(cell.data.normalize, data.x_train)
    got: list[torch.nn.Module] = []
    caches = [ClassifierCache(tmp_path / "classifiers") for _ in range(2)]  # as two worker processes hold
    threads = [
        threading.Thread(target=lambda c=c: got.append(c.get(cell, data.x_train, data.y_train, 10, normalizer)))
        for c in caches
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(calls) == 1 and len(got) == 2
    assert [c.trained for c in caches].count(1) == 1
    for a, b in zip(got[0].state_dict().values(), got[1].state_dict().values()):
        assert torch.equal(a, b)


# --------------------------------------------------------------------------- workers that die, Ctrl-C


@pytest.mark.slow  # fresh workers import torch: ~10-20 s each on 2 busy cores
def test_a_killed_worker_is_run_again_and_no_finished_cell_is_lost(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_experiment(tiny_sweep(tmp_path, "kill", seeds=[0, 1, 2], train={**TINY["train"], "epochs": 30}))
    out = tmp_path / "out"
    started = lambda: any(out.glob("cells/*/*/*/config.yaml"))  # noqa: E731 - a cell is running
    with caplog.at_level(logging.WARNING, logger="aebench"):
        rows, killed = killing(
            workers_of_this_test,
            1,
            ready=started,
            body=lambda: run_experiment(config, out, NO_DATA, "cpu", PoolExecutor(2, 1)),
        )
    assert len(killed) == 1
    assert "its worker process died; running it again, alone" in caplog.text
    assert sorted(r["seed"] for r in rows) == [0, 1, 2] and all(r["status"] == "ok" for r in rows)
    assert len(read_rows(out)) == 3


@pytest.mark.slow  # fresh workers import torch: ~10-20 s each on 2 busy cores
def test_a_cell_whose_worker_dies_twice_is_recorded_failed(tmp_path: Path) -> None:
    config = load_experiment(tiny_sweep(tmp_path, "twice", train={**TINY["train"], "epochs": 30}))
    out = tmp_path / "out"
    started = lambda: any(out.glob("cells/*/*/*/config.yaml"))  # noqa: E731 - the cell is running (or ran)
    rows, killed = killing(
        workers_of_this_test,
        2,
        ready=started,
        body=lambda: run_experiment(config, out, NO_DATA, "cpu", PoolExecutor(1, 1)),
    )
    assert len(killed) == 2
    (row,) = read_rows(out)
    assert row == rows[0]
    assert row["status"] == "failed" and row["reason"].startswith("worker process died 2 times")
    assert row["mse"] is None and row["threads"] == 1


@pytest.mark.slow  # fresh workers import torch: ~10-20 s each on 2 busy cores
def test_ctrl_c_kills_the_running_cells_and_keeps_the_finished_rows(tmp_path: Path) -> None:
    config = load_experiment(tiny_sweep(tmp_path, "cancel", seeds=[0, 1, 2], train={**TINY["train"], "epochs": 30}))
    with pytest.raises(KeyboardInterrupt):
        run_experiment(config, tmp_path / "out", NO_DATA, "cpu", PoolExecutor(2, 1), Interrupt())
    assert len(read_rows(tmp_path / "out")) == 1
    deadline = time.monotonic() + 10
    while workers_of_this_test() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert workers_of_this_test() == []


# --------------------------------------------------------------------------- the plan


def cells(n: int, **train: Any) -> list:
    return parse_experiment({**TINY, "seeds": list(range(n)), "train": {**TINY["train"], **train}}, "t").cells()


BIG = 2 * MIN_PARALLEL_IMAGES


@pytest.mark.parametrize(
    ("count", "cores", "busy", "memory", "expected"),
    [
        (6, 2, 0.0, 64_000, (2, 1, False)),  # a sweep on 2 quiet cores: two single-thread cells at once
        (6, 2, 1.0, 64_000, (2, 1, False)),  # one core busy: still two (they do not wait on each other)
        (1, 2, 0.0, 64_000, (1, 2, False)),  # one cell: both cores, in a worker (passive OpenMP waits)
        (1, 2, 1.0, 64_000, (1, 1, True)),  # one cell, one core busy: one thread, here
        (3, 16, 0.0, 64_000, (3, 5, False)),  # fewer cells than cores: the cores shared out
        (6, 2, 0.0, 2_000, (1, 2, False)),  # memory for one cell only
    ],
)
def test_the_plan_follows_cores_load_and_memory(
    count: int, cores: int, busy: float, memory: float, expected: tuple[int, int, bool]
) -> None:
    plan = plan_cells(cells(count), Machine(cores, busy, memory), 1_500, BIG)
    assert (plan.workers, plan.threads, plan.in_process) == expected


def test_a_small_sweep_stays_in_this_process_unless_parallel_cells_are_asked_for() -> None:
    quiet = Machine(2, 0.0, 64_000)
    assert plan_cells(cells(4), quiet, 1_500, MIN_PARALLEL_IMAGES - 1).workers == 1
    assert plan_cells(cells(4), quiet, 1_500, MIN_PARALLEL_IMAGES - 1, max_parallel=2).workers == 2
    fixed = plan_cells(cells(4), quiet, 1_500, BIG, threads=3)
    assert fixed.threads == 3 and fixed.oversubscribed(quiet)  # 2 x 3 threads on 2 cores
    assert not plan_cells(cells(4), quiet, 1_500, BIG).oversubscribed(quiet)
    assert plan_cells(cells(4), Machine(2, 1.0, None), 1_500, BIG).oversubscribed(Machine(2, 1.0, None))


def test_auto_chooses_worker_processes_for_study_length_cells_and_this_process_for_small_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auto_executor.Machine, "read", classmethod(lambda cls, own_threads=1: Machine(2, 0.0, 64_000)))
    monkeypatch.delenv("OMP_NUM_THREADS")
    job = CellJob(tmp_path, NO_DATA, "cpu", "test")
    executor, small = AutoExecutor().choose(cells(4), job)
    assert isinstance(executor, LocalExecutor) and small.threads == 2
    executor, _ = AutoExecutor().choose(cells(4, epochs=1000), job)  # 128 images x 1000 epochs a cell
    assert executor == PoolExecutor(workers=2, threads=1)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # a thread count the user fixed is kept
    assert AutoExecutor().choose(cells(4), job)[1].threads == 1


def test_the_load_is_read_from_the_runnable_count(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "loadavg"
    fake.write_text("3.10 2.00 1.00 3/400 12345\n")  # 3 runnable: this reader and 2 others
    monkeypatch.setattr(machine, "LOADAVG", fake)
    monkeypatch.setattr(machine, "usable_cores", lambda: 4)
    now = Machine.read()
    assert now.busy == 2.0 and now.free_cores == 2 and now.cores == 4
    fake.write_text("9.0 9.0 9.0 12/400 12345\n")
    assert Machine.read().free_cores == 1  # never below one


def test_memory_estimates_grow_with_the_data_and_a_closed_form_fit() -> None:
    raw = DatasetCache(NO_DATA).raw("digits")
    small, large = (parse_experiment({**TINY, "data": {"limit_train": n}}, "t").cells()[0] for n in (64, 1024))
    assert cell_memory_mb(large, raw) > cell_memory_mb(small, raw)
    pca = parse_experiment({**TINY, "techniques": ["pca"], "data": {"limit_train": 1024}}, "t").cells()[0]
    wide = parse_experiment({**TINY, "data": {"limit_train": 1024, "image_size": 64}}, "t").cells()[0]
    assert cell_memory_mb(wide, raw) > cell_memory_mb(large, raw)
    assert cell_memory_mb(pca, raw) != cell_memory_mb(large, raw)


def test_waiting_threads_sleep_in_multi_threaded_workers_unless_the_user_chose(monkeypatch) -> None:
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    assert openmp_env(2)["OMP_WAIT_POLICY"] == WAIT_POLICY and openmp_env(2)["OMP_NUM_THREADS"] == "2"
    assert "OMP_WAIT_POLICY" not in openmp_env(1)  # one thread waits for no other
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    assert "OMP_WAIT_POLICY" not in openmp_env(4)


def test_a_worker_sets_its_environment_before_torch_loads() -> None:
    code = "import sys, aebench.execution.worker; assert 'torch' not in sys.modules, 'torch loaded too early'"
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
