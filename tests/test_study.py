"""The study beside our rows: the published value against our prediction interval, the gap in % or pp, the claim
verdicts read off the tested standings (rows built so that a careless verdict would be false), the settings box."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from report_rows import frame_of, make_row, stats_of
from scipy import stats as sps

from aebench.reporting import words
from aebench.reporting.study import comparison
from aebench.reporting.study.anchors import ANCHORS

SEEDS = (0, 1, 2)


def published(technique: str, metric: str = "mse") -> float:
    return getattr(ANCHORS[("mnist", technique)], metric)


def mnist_rows(mse: dict[str, list[float]], accuracy: dict[str, list[float]] | None = None, **fields) -> list[dict]:
    """MNIST rows at the study's size; MAE follows MSE, accuracy as given (else the study's, seed-jittered)."""
    rows = []
    for t, values in mse.items():
        for s, v in zip(SEEDS, values):
            acc = (accuracy or {}).get(t, [published(t, "accuracy") + 0.0002 * (s - 1)] * 3)[s]
            rows.append(make_row("study", "mnist", t, s, config_hash=f"{t[:4]}{s}", mse=v, mae=10 * v, accuracy=acc,
                                 n_train=60_000, n_test=10_000, epochs=15, accuracy_clean=0.9912, **fields))  # fmt: skip
    return rows


def compare(rows: list[dict], tmp: Path):
    stats, _ = stats_of(rows, tmp)
    frame = frame_of(rows, tmp / "frame")
    return comparison("mnist", stats, frame)


def test_the_published_value_is_set_against_our_prediction_interval(tmp_path: Path) -> None:
    base = [0.00080, 0.00090, 0.00095]  # mean 0.00088: the study's 0.000854 inside the PI, outside the CI
    comp = compare(mnist_rows({"baseline": base, "pixel_shuffle": [0.0030, 0.0031, 0.0032]}), tmp_path)
    row = comp.frame[(comp.frame["technique"] == "baseline") & (comp.frame["metric"] == "mse")].iloc[0]
    half = sps.t.ppf(0.975, 2) * np.std(base, ddof=1) * math.sqrt(1 + 1 / 3)
    assert row["pi_high"] == pytest.approx(np.mean(base) + half) and bool(row["inside"])
    assert row["diff"] == pytest.approx((np.mean(base) / 0.000854 - 1) * 100) and row["unit"] == "%"
    far = comp.frame[(comp.frame["technique"] == "pixel_shuffle") & (comp.frame["metric"] == "mse")].iloc[0]
    assert not far["inside"]
    acc = comp.frame[(comp.frame["technique"] == "baseline") & (comp.frame["metric"] == "accuracy")].iloc[0]
    assert acc["unit"] == "pp" and acc["diff"] == pytest.approx((acc["mean"] - 0.99) * 100)
    clean = comp.frame[comp.frame["technique"] == "clean images"].iloc[0]
    assert clean["n"] == 1 and clean["inside"] is None  # one classifier: one value, no interval
    verdict = words.study_verdict(comp)
    assert "does not reproduce" not in verdict and "inside our 95 % prediction interval" in verdict


def test_the_mnist_claim_holds_only_where_each_measure_is_backed_by_a_test(tmp_path: Path) -> None:
    clear = {"baseline": [0.0010, 0.0011, 0.0012], "pixel_shuffle": [0.0030, 0.0032, 0.0031]}
    acc = {"baseline": [0.990, 0.991, 0.992], "pixel_shuffle": [0.950, 0.952, 0.951]}
    comp = compare(mnist_rows(clear, acc), tmp_path / "clear")
    assert "**holds**" in words.claim_verdict(*comp.claims[0])
    close = {"baseline": [0.0010, 0.0011, 0.0012], "pixel_shuffle": [0.00101, 0.00109, 0.00121]}
    comp = compare(mnist_rows(close, acc), tmp_path / "close")
    verdict = words.claim_verdict(*comp.claims[0])
    assert "**not shown**" in verdict and "MSE a tie (baseline, pixel_shuffle)" in verdict
    better = {"baseline": [0.0030, 0.0032, 0.0031], "pixel_shuffle": [0.0010, 0.0011, 0.0012]}
    comp = compare(mnist_rows(better, acc), tmp_path / "better")
    assert "**does not hold**: pixel_shuffle is best on MAE" in words.claim_verdict(*comp.claims[0])


def test_the_box_names_each_setting_that_differs_and_each_missing_technique(tmp_path: Path) -> None:
    settings = {"train.optimizer": "adam", "model.latent": 32, "data.image_size": 32, "train.lr": 0.001}
    rows = mnist_rows({"baseline": [0.001, 0.0011, 0.0012]}, settings=settings)
    rows.append(make_row("study", "mnist", "resnet_pretrained", 0, "skipped", config_hash="rp0", n_train=None))
    box = compare(rows, tmp_path).differences
    assert any(line.startswith("train.optimizer: adam (the study: adamw") for line in box)
    assert any(line.startswith("model.latent: 32 (the study: 1000)") for line in box)
    assert not any(line.startswith(("data.image_size", "train.lr")) for line in box)  # the study's own values
    assert any(line.startswith("resnet_pretrained: no result here (skipped: no pretrained weights") for line in box)
    assert any(line.startswith("not run here: ") and "feature_loss" in line for line in box)


def test_no_comparison_outside_the_study_datasets(tmp_path: Path) -> None:
    rows = [make_row("exp", "digits", "baseline", s, config_hash=f"b{s}") for s in SEEDS]
    stats, _ = stats_of(rows, tmp_path)
    assert comparison("digits", stats, frame_of(rows, tmp_path / "frame")) is None


def test_one_seed_cannot_judge_the_reproduction(tmp_path: Path) -> None:
    rows = [r for r in mnist_rows({"baseline": [0.00085, 0.0009, 0.00095]}) if r["seed"] == 0]
    comp = compare(rows, tmp_path)
    assert comp.frame["inside"].isna().all()  # no prediction interval from one seed
    assert "reproduces**" not in words.study_verdict(comp)  # neither "reproduces" nor "does not reproduce"


def test_the_first_screen_takes_the_judged_table_closest_to_the_study(tmp_path: Path) -> None:
    base = {"baseline": [0.00085, 0.0009, 0.00095]}
    one_seed = compare([r for r in mnist_rows(base) if r["seed"] == 0], tmp_path / "a")
    small_latent = compare(mnist_rows({**base, "pixel_shuffle": [0.001, 0.0011, 0.0012]}, latent=32), tmp_path / "b")
    faithful = compare(mnist_rows(base, latent=1000), tmp_path / "c")
    ranked = sorted([one_seed, small_latent, faithful], key=lambda c: c.closeness)
    assert ranked == [faithful, small_latent, one_seed]
