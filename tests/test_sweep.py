"""Sweep axes in one experiment: the expansion into cells, each value checked as the setting itself, the point
part of each cell's setting (hash, identity, rows, plan, summary, API), ``--set`` of an axis, unchanged hashes
without a sweep, and resume after a kill mid-sweep."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from helpers import REPO, TINY

from aebench.api import run_summarized
from aebench.cli import main
from aebench.config import ConfigError
from aebench.errors import UserError
from aebench.execution.checkpoint import RESUME_FILE
from aebench.execution.planning import plan
from aebench.execution.pool_executor import PoolExecutor
from aebench.execution.runner import LocalExecutor, run_experiment
from aebench.experiment import load_experiment, parse_experiment
from aebench.results.schema import RESULTS_FILE, ROW_FIELDS, cell_folder
from aebench.results.store import append_row, cell_of, read_rows

LATENTS = {"model.latent": [4, 8]}


def sweep(techniques: list[str], axes: dict[str, list[Any]], **changes: Any):
    return parse_experiment({**TINY, "techniques": techniques, "sweep": axes, **changes}, "x.yaml")


def write(path: Path, **changes: Any) -> Path:
    path.write_text(yaml.safe_dump({**TINY, **changes}))
    return path


# --------------------------------------------------------------------------- the expansion


def test_the_cells_are_the_product_dataset_then_point_then_technique_then_seed() -> None:
    config = sweep(["baseline", "pca"], {"model.latent": [4, 8], "train.lr": [0.01, 0.001]}, seeds=[0, 1])
    plan_ = [(c.axes["model.latent"], c.axes["train.lr"], c.technique, c.seed) for c in config.cells()]
    points = [(4, 0.01), (4, 0.001), (8, 0.01), (8, 0.001)]  # the first axis slowest, values in listed order
    assert plan_ == [(*p, t, s) for p in points for t in ("baseline", "pca") for s in (0, 1)]
    cell = config.cells()[4]
    assert (cell.model.latent, cell.train.lr) == (4, 0.001)
    assert config.cell("digits", "pca", 0).axes == {"model.latent": 4, "train.lr": 0.01}  # the first point


def test_an_axis_on_a_technique_option_varies_only_that_technique() -> None:
    axes = {**LATENTS, "overrides.progressive_resizing.sizes": [[4], [6]]}
    cells = sweep(["baseline", "progressive_resizing"], axes).cells()
    assert [(c.technique, c.model.latent, getattr(c.params, "sizes", None)) for c in cells] == [
        ("baseline", 4, None),
        ("progressive_resizing", 4, (4,)),
        ("progressive_resizing", 4, (6,)),
        ("baseline", 8, None),
        ("progressive_resizing", 8, (4,)),
        ("progressive_resizing", 8, (6,)),
    ]
    assert cells[0].axes == {"model.latent": 4}  # the baseline's rows never name another technique's option
    assert cells[2].axes == {"model.latent": 4, "overrides.progressive_resizing.sizes": [6]}


def test_an_axis_replaces_the_value_its_key_has_in_the_file() -> None:
    cells = sweep(["baseline"], {"model.latent": [16]}, model={"latent": 8}).cells()
    assert [c.model.latent for c in cells] == [16]


@pytest.mark.parametrize(
    ("axes", "message"),
    [
        ({"model.latent": [4, 0]}, "'sweep.model.latent': value 0: 'model.latent' must be >= 1 (got 0)"),
        ({"train.lr": [1e-3, "fast"]}, "'sweep.train.lr': value 'fast': 'train.lr' must be"),
        ({"model.latent": 8}, "'sweep.model.latent' must list the values to sweep, e.g. [8, 32] (got 8)"),
        ({"model.latent": []}, "'sweep.model.latent' must list the values to sweep"),
        ({"model.size": [1]}, "'sweep.model.size': value 1: unknown key 'model.size' (known: latent, layers)"),
        ({"seeds": [1, 2]}, "'sweep.seeds': an axis is a dotted setting key"),
        ({"model": {"latent": [4]}}, "'sweep.model': an axis is a dotted setting key"),
        ({"train.lr": [1e-3, 0.001]}, "'sweep.train.lr' lists 0.001 twice (each value once)"),
        ({"overrides.pca.sizes": [[4]]}, "'sweep.overrides.pca.sizes': value [4]: unknown key 'overrides.pca.sizes'"),
        ({"overrides.feature_loss.gram_weight": [0.0]}, "'feature_loss' is not among the experiment's techniques"),
        ({"overrides.nope.x": [1]}, "unknown technique 'nope'"),
        (
            {"data.corruption": [{"kind": "mask"}], "data.corruption.p": [0.5]},
            "'sweep.data.corruption' and 'sweep.data.corruption.p' both set data.corruption of baseline",
        ),
        (
            {"model.latent": [4], "overrides.pca.model.latent": [8]},
            "'sweep.model.latent' and 'sweep.overrides.pca.model.latent' both set model.latent of pca",
        ),
    ],
)
def test_a_bad_axis_is_one_line_naming_the_key_and_value(axes: dict[str, Any], message: str) -> None:
    with pytest.raises(UserError) as caught:
        sweep(["baseline", "pca"], axes)
    assert str(caught.value).startswith("x.yaml: ") and message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_an_axis_that_a_technique_override_also_sets_is_an_error() -> None:
    """The override would hide the axis: pca's cells would repeat one config. Sweeping the override is the way."""
    overrides = {"pca": {"model": {"latent": 3}}}
    with pytest.raises(ConfigError, match=r"'sweep.model.latent' and 'overrides.pca.model.latent' both set"):
        sweep(["baseline", "pca"], LATENTS, overrides=overrides)
    cells = sweep(["baseline", "pca"], {"overrides.pca.model.latent": [2, 3]}, overrides=overrides).cells()
    assert [(c.technique, c.model.latent) for c in cells] == [("baseline", 8), ("pca", 2), ("pca", 3)]


def test_a_bad_value_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "exp.yaml", sweep={"model.latent": [8, -1]})
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"aebench: error: {path}: 'sweep.model.latent': value -1: 'model.latent' must be >= 1 (got -1)"]


def test_the_readme_sweep_example_is_valid() -> None:
    text = (REPO / "README.md").read_text().split("### Sweeping a setting")[1]
    block = yaml.safe_load(text.split("```yaml")[1].split("```")[0])
    cells = sweep(["baseline", "progressive_resizing"], block["sweep"]).cells()
    assert len(cells) == len(block["sweep"]["model.latent"]) * (
        1 + len(block["sweep"]["overrides.progressive_resizing.sizes"])
    )


# --------------------------------------------------------------------------- --set of an axis


def test_set_gives_replaces_and_removes_an_axis(tmp_path: Path) -> None:
    path = write(tmp_path / "exp.yaml", sweep=LATENTS)
    latents = [c.model.latent for c in load_experiment(path).cells()]
    assert latents == [4, 8]
    given = load_experiment(write(tmp_path / "plain.yaml"), ["sweep.model.latent=[2, 4, 8]"]).cells()
    assert [c.axes for c in given] == [{"model.latent": n} for n in (2, 4, 8)]
    replaced = load_experiment(path, ["sweep.model.latent=[16]", "sweep.train.lr=[0.01]"]).cells()
    assert [c.axes for c in replaced] == [{"model.latent": 16, "train.lr": 0.01}]
    assert [c.axes for c in load_experiment(path, ["sweep={}"]).cells()] == [{}]
    with pytest.raises(ConfigError, match=r"^--set sweep.model.latent=\[0\]: 'sweep.model.latent': value 0"):
        load_experiment(path, ["sweep.model.latent=[0]"])


# --------------------------------------------------------------------------- the point in the cell's setting


def test_each_value_is_its_own_cell_and_no_sweep_keeps_todays_hashes() -> None:
    plain = parse_experiment(TINY, "x").cells()[0]
    at_8, at_4 = sweep(["baseline"], {"model.latent": [8, 4]}).cells()
    assert len({plain.config_hash, at_8.config_hash, at_4.config_hash}) == 3  # the point is in the hash too
    assert plain.axes == {} and "axes" not in json.dumps(plain.to_dict()["train"])
    assert cell_of(plain.to_dict()) == ("tiny", "digits", "baseline", 0)  # a cell of no sweep: its four keys
    assert cell_of(at_8.to_dict()) != cell_of(at_4.to_dict())


def test_the_committed_results_folders_stay_resumable() -> None:
    """Every cell of the committed one-cycle MNIST run is done at today's hash: no hash moved."""
    folder = REPO / "report" / "results" / "mnist-onecycle"
    planned = plan(load_experiment(REPO / "experiments" / "mnist-onecycle.yaml"), folder)
    assert planned and all(p.done for p in planned)


def test_rows_plan_summary_and_api_carry_the_point(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path / "exp.yaml", techniques=["pca"], seeds=[0, 1], sweep=LATENTS)
    summary = run_summarized(load_experiment(path), tmp_path / "out", device="cpu", executor="local")
    rows = summary.rows
    assert list(zip(rows["model.latent"], rows["seed"], rows["latent"])) == [(4, 0, 4), (4, 1, 4), (8, 0, 8), (8, 1, 8)]
    assert list(rows["axes"]) == [{"model.latent": n} for n in (4, 4, 8, 8)] and rows["config_hash"].nunique() == 4
    stored = read_rows(tmp_path / "out")
    assert [r["axes"] for r in stored] == list(rows["axes"])
    for row in stored:  # one cell folder per value, named by the hash
        folder = cell_folder(tmp_path / "out", "digits", "pca", row["seed"], row["config_hash"])
        assert yaml.safe_load((folder / "config.yaml").read_text())["axes"] == row["axes"]
    assert "model.latent 4" in summary.text() and "model.latent 8" in summary.text()  # one table per value
    assert [int(v) for v in summary.table["axis model.latent"]] == [4, 8]
    assert main(["run", str(path), "--out", str(tmp_path / "out"), "--dry-run"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if "pca" in line]
    assert [line.split()[0] for line in lines] == ["done"] * 4
    assert [line.split("  ")[-2].strip() for line in lines] == [f"model.latent={n}" for n in (4, 4, 8, 8)]


def test_the_summary_lists_an_unfinished_cell_once_per_point(tmp_path: Path) -> None:
    config = sweep(["baseline"], {"train.lr": [1e20, 1e21]})  # both diverge
    text = run_summarized(config, tmp_path, device="cpu", executor="local").text()
    assert [line.split(": failed")[0] for line in text.splitlines() if "failed:" in line] == [
        "  digits (train.lr 1e+20) / baseline / seed 0",
        "  digits (train.lr 1e+21) / baseline / seed 0",
    ]


def test_a_row_whose_axes_are_not_a_mapping_is_skipped(tmp_path: Path) -> None:
    base = {**dict.fromkeys(ROW_FIELDS), "experiment": "e", "dataset": "digits", "technique": "pca", "seed": 0}
    for axes in ({"model.latent": 8}, [8]):
        append_row(tmp_path, {**base, "status": "ok", "config_hash": "h1", "axes": axes})
    assert [r["axes"] for r in read_rows(tmp_path)] == [{"model.latent": 8}]


def test_make_bench_offline_runs_its_two_latent_32_variants_as_one_sweep() -> None:
    """experiments/fashion-rate.yaml: the cells the Makefile ran as two folders (fashion.yaml at latent 32, baseline
    and PCA, 3 and 15 epochs), now one experiment; nothing else differs."""
    experiments = REPO / "experiments"
    rate = load_experiment(experiments / "fashion-rate.yaml").cells()
    variant = ["name=fashion-rate", "model.latent=32", "techniques=[baseline, pca]"]
    before = [
        c
        for epochs in (3, 15)
        for c in load_experiment(experiments / "fashion.yaml", [*variant, f"train.epochs={epochs}"]).cells()
    ]
    assert [replace(c, axes={}) for c in rate] == before
    assert {json.dumps(c.axes, sort_keys=True) for c in rate} == {
        json.dumps({"model.latent": 32, "train.epochs": n}, sort_keys=True) for n in (3, 15)
    }
    assert "experiments/fashion-rate.yaml" in (REPO / "Makefile").read_text()


@pytest.mark.slow  # fresh worker processes import torch: ~10-20 s on 2 busy cores (Ray: ~8 s more to start)
@pytest.mark.parametrize("executor", ["pool", "ray"])
def test_other_executors_run_the_points_as_the_local_one(executor: str, tmp_path: Path) -> None:
    """The executors pass whole cells: each value trains at its own setting and its row names its point."""
    if executor == "ray":
        pytest.importorskip("ray", reason="the [ray] extra is not installed")
        from aebench.execution.ray_executor import RayExecutor

        runner = RayExecutor(max_parallel=2)
    else:
        runner = PoolExecutor(workers=2, threads=1)
    config = load_experiment(write(tmp_path / "exp.yaml", techniques=["baseline", "pca"], sweep=LATENTS))
    local = run_experiment(config, tmp_path / "local", Path("/nonexistent"), "cpu", LocalExecutor())
    other = run_experiment(config, tmp_path / "other", Path("/nonexistent"), "cpu", runner)
    assert by_point(other) == by_point(local) and {r["latent"] for r in other} == {4, 8}


def by_point(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What two executors must agree on, in one order whatever order the cells finished in."""
    fields = ["technique", "axes", "latent", "config_hash", "status", "mse", "accuracy"]
    return sorted(({k: r[k] for k in fields} for r in rows), key=json.dumps)


# --------------------------------------------------------------------------- resume after a kill


def test_a_killed_sweep_resumes_mid_cell_and_retrains_nothing(tmp_path: Path) -> None:
    """SIGKILL once the second value's cell has saved an epoch; the rerun keeps the first value's row, resumes the
    second cell where it stood, and both end with an uninterrupted run's metrics (in-process, one thread)."""
    data = {"limit_train": 512, "limit_test": 48}
    path = write(tmp_path / "exp.yaml", train={**TINY["train"], "epochs": 6}, data=data, sweep=LATENTS)
    config = load_experiment(path)
    whole = run_experiment(config, tmp_path / "whole", Path("/nonexistent"), "cpu")
    out = tmp_path / "cut"
    second = cell_folder(out, "digits", "baseline", 0, config.cells()[1].config_hash) / RESUME_FILE
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    command = [sys.executable, "-m", "aebench", "-q", "run", str(path), "--out", str(out), "--device", "cpu"]
    cut = subprocess.Popen([*command, "--executor", "local"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not second.exists() and cut.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    cut.send_signal(signal.SIGKILL)
    cut.wait(timeout=60)
    assert cut.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    (first,) = read_rows(out)
    assert first["axes"] == {"model.latent": 4}
    assert [p.done for p in plan(config, out)] == [True, False]
    (resumed,) = run_experiment(config, out, Path("/nonexistent"), "cpu")
    assert resumed["axes"] == {"model.latent": 8} and resumed["resumed_at"]
    metrics = ["mae", "mse", "psnr", "ssim", "accuracy", "epochs_trained", "config_hash", "axes"]
    assert [{m: r[m] for m in metrics} for r in read_rows(out)] == [{m: r[m] for m in metrics} for r in whole]
    assert (out / RESULTS_FILE).read_text().count("\n") == 2  # nothing retrained


def test_a_swept_cell_is_hashable_and_equal_only_at_its_point() -> None:
    at_8, at_4 = sweep(["baseline"], {"model.latent": [8, 4]}).cells()
    assert len({at_8, at_4, at_8}) == 2  # cells key caches (the bench's step cache): a point's dict must not break it


def test_a_cell_two_experiments_define_is_shared_once_and_counts_done(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("share_cells", REPO / "scripts" / "share_cells.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    alone = write(tmp_path / "alone.yaml", name="alone")  # latent 8, no sweep
    run_experiment(load_experiment(alone), tmp_path / "alone", Path("/nonexistent"), "cpu")
    swept = write(tmp_path / "swept.yaml", name="swept", sweep={"model.latent": [4, 8]})
    assert len(module.share(tmp_path / "alone", swept, tmp_path / "swept", [])) == 1
    assert [p.done for p in plan(load_experiment(swept), tmp_path / "swept")] == [False, True]
    (row,), (source,) = read_rows(tmp_path / "swept"), read_rows(tmp_path / "alone")
    assert row["experiment"] == "swept" and row["axes"] == {"model.latent": 8} and row["mse"] == source["mse"]
    assert (cell_folder(tmp_path / "swept", "digits", "baseline", 0, row["config_hash"]) / "samples.npz").is_file()
    assert module.share(tmp_path / "alone", swept, tmp_path / "swept", []) == []  # once
    other = write(tmp_path / "other.yaml", name="other", sweep={"model.latent": [4, 16]}, train={"epochs": 2})
    assert module.share(tmp_path / "alone", other, tmp_path / "other", []) == []  # no cell with its settings
