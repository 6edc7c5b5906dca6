"""Speed machinery without timing assertions: precision resolution, fp16 scaling, the classifier trained once,
the device-side loss, compile time kept apart, and the ``aebench bench`` command's report."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import TINY, built

from aebench import cli
from aebench.data import DatasetCache
from aebench.data.pixels import Normalizer
from aebench.evaluation import classifier as classifier_module
from aebench.evaluation.classifier import classifier_key
from aebench.execution.runner import run_experiment
from aebench.experiment import load_experiment, parse_experiment
from aebench.results.store import read_rows
from aebench.training import precision as precision_module
from aebench.training.loop import Splits, train
from aebench.training.precision import grad_scaler, resolve_precision

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("flags", "expected"),
    [({"avx2", "amx_bf16"}, "bf16"), ({"avx512_bf16"}, "bf16"), ({"avx2", "avx512f"}, "fp32"), (set(), "fp32")],
)
def test_auto_precision_is_bf16_only_with_native_cpu_support(
    monkeypatch: pytest.MonkeyPatch, flags: set[str], expected: str
) -> None:
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset(flags))
    assert resolve_precision("auto", CPU) == expected
    for name in ("fp32", "bf16", "fp16"):  # an explicit choice is taken as given
        assert resolve_precision(name, CPU) == name


def test_only_fp16_scales_gradients() -> None:
    assert grad_scaler("fp16", CPU).is_enabled()
    assert not grad_scaler("bf16", CPU).is_enabled() and not grad_scaler("fp32", CPU).is_enabled()


def tiny_training(precision: str) -> tuple[object, Splits, Normalizer, object]:
    raw = {**TINY, "train": {**TINY["train"], "batch_size": 16, "precision": precision}}
    cell = parse_experiment({**raw, "data": {"limit_train": 48, "limit_test": 16}}, "test").cells()[0]
    data = DatasetCache(Path("/nonexistent")).prepared("digits", cell.data)
    recipe = built(cell, data.x_train)
    return cell, Splits(data.x_train, data.x_test), Normalizer.create(cell.data.normalize, data.x_train), recipe


def test_fp16_training_runs_through_the_scaler_and_changes_the_weights() -> None:
    cell, splits, normalizer, recipe = tiny_training("fp16")
    before = [p.detach().clone() for p in recipe.model.parameters()]
    outcome = train(recipe, splits, cell, normalizer)
    assert outcome.precision == "fp16"
    assert all(torch.isfinite(torch.tensor(h["train_loss"])) for h in outcome.history)
    assert not any(torch.equal(p, q) for p, q in zip(recipe.model.parameters(), before))


def test_a_training_step_leaves_its_loss_on_the_device() -> None:
    from aebench.training.loop import start_run
    from aebench.training.optim import make_optimizer

    cell, splits, normalizer, recipe = tiny_training("fp32")
    run = start_run(recipe, splits, cell, normalizer, "", None)
    optimizer = make_optimizer(cell.train, [{"params": list(recipe.model.parameters()), "lr": 1e-3}])
    loss = run.step(optimizer, *run.batch(splits.train[:16]))
    assert isinstance(loss, torch.Tensor) and loss.ndim == 0 and not loss.requires_grad


def test_the_classifier_trains_once_for_a_three_seed_sweep_and_never_on_a_rerun(
    experiment_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = classifier_module.train_classifier

    def counting(*args, **kwargs):
        calls.append(args[3].technique)
        return real(*args, **kwargs)

    monkeypatch.setattr(classifier_module, "train_classifier", counting)
    config = load_experiment(experiment_file(techniques=["baseline", "pca"], seeds=[0, 1, 2]))
    rows = run_experiment(config, tmp_path / "out", Path("/nonexistent"), "cpu")
    assert [r["status"] for r in rows] == ["ok"] * 6
    assert len(calls) == 1
    assert len({r["accuracy_clean"] for r in rows}) == 1  # one instrument: the same clean accuracy everywhere
    assert all(r["compile_seconds"] is None for r in rows)  # eager training compiles nothing
    (tmp_path / "out" / "results.jsonl").unlink()  # every cell reruns; the classifier is read back
    run_experiment(config, tmp_path / "out", Path("/nonexistent"), "cpu")
    assert len(calls) == 1 and len(read_rows(tmp_path / "out")) == 6


def test_bench_reports_both_loops_flops_and_peak_for_each_technique(experiment_file, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--experiment", str(experiment_file()), "--dataset", "digits", "--device", "cpu"]
    code = cli.main(
        [*args, "--technique", "baseline", "--steps", "1", "--repeats", "1", "--seconds", "1", "--json", str(out)]
    )
    assert code == 0
    report = json.loads(out.read_text())
    (row,) = report["rows"]
    assert row["status"] == "ok" and row["technique"] == "baseline"
    assert row["aebench_img_s"] > 0 and row["naive_img_s"] > 0 and row["eval_img_s"] > 0
    assert row["speedup_low"] <= row["speedup"] <= row["speedup_high"] and row["pairs"] >= 2  # the shared timer's
    assert report["settings"]["timer"]["min_pairs"] == 1 and report["settings"]["timer"]["max_seconds"] == 1
    assert row["gflops_per_image"] > 0 and row["peak_memory_mb"] > 0
    peak = report["peak_gflop_s"][row["precision"]]
    assert row["peak_fraction"] == pytest.approx(row["gflops_per_image"] * row["aebench_img_s"] / peak)


def test_bench_skips_a_technique_without_gradient_steps(experiment_file, tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    args = ["bench", "--experiment", str(experiment_file()), "--technique", "pca", "--json", str(out)]
    assert cli.main([*args, "--steps", "1", "--repeats", "1", "--seconds", "1"]) == 0
    (row,) = json.loads(out.read_text())["rows"]
    assert row["status"] == "skipped" and "closed-form" in row["reason"]


@pytest.mark.parametrize(
    ("bad", "expected"),
    [
        (["--technique", "nope"], "--technique nope: unknown name"),
        (["--sweep", "--technique", "nope"], "--technique nope: unknown name"),
        (["--steps", "0"], "--steps"),
        (["--dataset", "nope"], "--dataset nope: unknown name"),
        (["--data-root", "{tmp}/exp.yaml"], "is a file, not a folder"),
        (["--dataset", "mnist", "--data-root", "{tmp}/data"], "t10k-labels-idx1-ubyte there"),  # the run's line, whole
    ],
)
def test_bench_input_errors_are_one_line_with_exit_2(
    experiment_file, bad: list[str], expected: str, tmp_path: Path, offline, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = [arg.format(tmp=tmp_path) for arg in bad]
    assert cli.main(["bench", "--experiment", str(experiment_file()), "--technique", "baseline", *bad]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("aebench: error:") and "\n" not in err
    assert expected.format(tmp=tmp_path) in err


@pytest.mark.slow
def test_compile_time_is_kept_apart_from_training_time() -> None:
    cell, splits, normalizer, recipe = tiny_training("fp32")
    cell = type(cell)(**{**cell.__dict__, "train": type(cell.train)(**{**cell.train.__dict__, "compile": True})})
    outcome = train(recipe, splits, cell, normalizer)
    assert outcome.compile_seconds is not None and outcome.compile_seconds > 0
    assert outcome.images_seen == len(splits.train) - 16  # the compiling step is not a training-speed step


def test_peak_memory_restarts_from_the_current_footprint_after_a_reset() -> None:
    from aebench.training.memory import peak_memory_mb, reset_peak_memory

    block = torch.ones(50 * 2**20)  # 200 MiB, touched
    with_block = peak_memory_mb(CPU)
    del block
    reset_peak_memory(CPU)
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("no /proc/self/clear_refs here: the CPU peak is the process's since it started")
    assert peak_memory_mb(CPU) < with_block - 100


def test_augmentation_settings_share_one_classifier(experiment_file) -> None:
    """The classifier sees clean images, so an ablation of the augmentation measures every arm with one
    instrument; the clean data settings (image size) still tell classifiers apart."""
    config = load_experiment(experiment_file(techniques=["baseline"], seeds=[0]))
    (cell,) = config.cells()
    arms = [
        replace(cell, data=replace(cell.data, augment=augment, augment_style=style))
        for augment in (False, True)
        for style in ("affine", "dihedral")
    ]
    assert len({classifier_key(arm) for arm in arms}) == 1
    assert classifier_key(replace(cell, data=replace(cell.data, image_size=16))) != classifier_key(cell)
