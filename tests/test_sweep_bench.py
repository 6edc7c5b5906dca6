"""``aebench bench --sweep`` and ``--busy-core``: the schedule and the full-experiment estimate computed from rows,
the report's text true for its numbers, and both commands end to end (slow: they start fresh processes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from helpers import TINY

from aebench import cli
from aebench.bench.sweep import Sizes, SweepSettings, estimate, hours, makespan, markdown_sweep, shortened_sets
from aebench.experiment import parse_experiment


def test_makespan_gives_each_job_to_the_first_free_worker_in_order() -> None:
    assert makespan([3, 1, 1, 1], 2) == 3
    assert makespan([3, 1, 1, 1], 1) == 6
    assert makespan([1, 1, 3], 2) == 4  # in order, not longest first: the pool's own schedule


def row(technique: str, status: str = "ok", **values: Any) -> dict[str, Any]:
    return {"dataset": "digits", "technique": technique, "status": status, **values}


MEASURED = [  # 100 training and 50 test images, one epoch, the classifier trained in the baseline's cell
    row("baseline", n_train=100, n_test=50, epochs=1, epochs_trained=1.0, train_seconds=10.0, eval_seconds=1.0,
        cell_seconds=14.0, classifier_seconds=2.0),
    row("pca", n_train=100, n_test=50, epochs=1, epochs_trained=0.0, train_seconds=1.0, cell_seconds=2.0),
    row("resnet_pretrained", status="skipped"),
]  # fmt: skip


def test_the_estimate_scales_each_part_of_a_cell_by_its_images() -> None:
    raw = {**TINY, "techniques": ["baseline", "pca", "resnet_pretrained", "mlp"], "seeds": [0, 1]}
    raw["train"] = {**TINY["train"], "epochs": 3}
    raw["data"], raw["classifier"] = {}, {"epochs": 10}
    full = parse_experiment(raw, "t").cells()
    sizes = {"digits": Sizes(1000, 100)}
    # baseline: training 10 s x 1000 x 3 / (100 x 1), evaluation 1 s x 100 / 50, the rest 1 s x 100 / 50 x 3 / 1;
    # pca: 1 s x 1000 / 100, the rest 1 s x 100 / 50; the classifier 2 s x 1000 x 10 / (100 x 1);
    # start-up: the wall beyond the measured cells (baseline 12 s, pca 2 s, classifier 2 s)
    one, unmeasured = estimate(full, MEASURED, workers=1, wall=20.0, classifier=2.0, sizes=sizes)
    assert one == pytest.approx((20 - 16) + 200 + 2 * 308 + 2 * 12)
    assert unmeasured == 2  # mlp was not in the measured sweep; the skipped cells cost nothing
    two, _ = estimate(full, MEASURED, workers=2, wall=20.0, classifier=2.0, sizes=sizes)
    assert two == pytest.approx((20 - 12) + makespan([200, 308, 308, 12, 12], 2))  # cells in plan order


def report(today: float, parallel: float, estimate_seconds: float) -> dict[str, Any]:
    variant = {"how": "h", "cells": 4, "ok": 4, "threads": [1], "parallel_cells": 1, "full_unmeasured_cells": 0,
               "images_per_second": {"baseline": 500.0}}  # fmt: skip
    return {
        "experiment": "e.yaml", "cells_full": 21, "measured_sets": ["train.epochs=1"], "device": "cpu",
        "cpu_flags": ["avx2"], "cores": 2, "busy_at_start": 1.0, "load_average": [1.0, 1.0, 1.0], "full_plan": "p",
        "variants": [
            {**variant, "variant": "today", "seconds": [today], "mean_seconds": today, "full_estimate_seconds": 7200},
            {**variant, "variant": "sequential", "seconds": [today], "mean_seconds": today,
             "full_estimate_seconds": 7200},
            {**variant, "variant": "parallel", "seconds": [parallel], "mean_seconds": parallel,
             "full_estimate_seconds": estimate_seconds},
        ],
    }  # fmt: skip


@pytest.mark.parametrize(("today", "parallel", "ratio"), [(100.0, 50.0, "2.00x"), (100.0, 200.0, "0.50x")])
def test_the_sweep_report_states_its_own_ratios_and_estimate(today: float, parallel: float, ratio: str) -> None:
    text = markdown_sweep(report(today, parallel, 36_000.0))
    line = next(line for line in text.splitlines() if line.startswith("| parallel"))
    assert f"| {ratio} |" in line
    assert "about 10.0 h with the default executor, 2.0 h with today's default" in text
    assert hours(600) == "10 min"
    assert "| baseline | 500 | 500 | 500 |" in text


def test_the_measured_sweep_keeps_the_users_settings_and_never_grows_the_data() -> None:
    config = parse_experiment({**TINY, "seeds": [0, 1, 2]}, "t")  # limit_train 128
    sets = shortened_sets(config, ["model.latent=4"], SweepSettings(images=4096, seeds=2))
    assert sets[0] == "model.latent=4" and "data.limit_train=128" in sets and "seeds=[0, 1]" in sets


@pytest.mark.slow  # three `aebench run` processes and two pool workers, each importing torch
def test_bench_sweep_runs_the_three_ways_and_estimates_the_experiment(experiment_file, tmp_path: Path) -> None:
    out = tmp_path / "sweep.json"
    path = experiment_file(techniques=["baseline", "pca"], seeds=[0, 1])
    args = ["bench", "--sweep", "--experiment", str(path), "--device", "cpu", "--sweep-seeds", "2"]
    assert cli.main([*args, "--data-root", "/nonexistent", "--json", str(out)]) == 0
    got = json.loads(out.read_text())
    names = [v["variant"] for v in got["variants"]]
    assert names == ["today", "sequential", "parallel"] and got["cells_full"] == 4
    assert all(v["ok"] == v["cells"] == 4 and v["full_estimate_seconds"] > 0 for v in got["variants"])
    by_name = {v["variant"]: v for v in got["variants"]}
    assert by_name["parallel"]["parallel_cells"] == min(2, got["cores"])


@pytest.mark.slow  # two worker processes importing torch, and a spinning process
def test_bench_busy_core_measures_both_sides_quiet_and_busy(experiment_file, tmp_path: Path) -> None:
    out = tmp_path / "busy.json"
    args = ["bench", "--busy-core", "--experiment", str(experiment_file()), "--technique", "baseline"]
    assert cli.main([*args, "--device", "cpu", "--steps", "2", "--repeats", "1", "--json", str(out)]) == 0
    sides = json.loads(out.read_text())["sides"]
    assert [s["side"] for s in sides] == ["today", "aebench", "aebench, load after the plan"]
    assert sides[2]["threads_busy"] == sides[2]["threads_quiet"] == sides[1]["threads_quiet"]  # kept, not re-read
    for side in sides:
        assert side["quiet_img_s"] > 0 and side["busy_img_s"] > 0
        assert side["busy_over_quiet"] == pytest.approx(side["busy_img_s"] / side["quiet_img_s"])
