"""The study beside our rows: the published value against our prediction interval, the gap in % or pp, the claim
verdicts read off the tested standings (rows built so that a careless verdict would be false), the settings box."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_rows import frame_of, make_row, stats_of, write_results
from scipy import stats as sps

from aebench.reporting import words
from aebench.reporting.build import write_report
from aebench.reporting.study import comparison
from aebench.reporting.study.anchors import ANCHORS, CLEAN_ACCURACY, PROXIES

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
    resized = mnist_rows({"baseline": [0.001, 0.0011, 0.0012]}, settings={**settings, "data.resize": "aebench"})
    assert any(
        line.startswith("data.resize: aebench (the study: fastai") for line in compare(resized, tmp_path).differences
    )
    studys = mnist_rows({"baseline": [0.001, 0.0011, 0.0012]}, settings={**settings, "data.resize": "fastai"})
    assert not any(line.startswith("data.resize") for line in compare(studys, tmp_path / "s").differences)


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
    fewer = compare(mnist_rows(base, latent=1000, settings={"data.resize": "fastai"}), tmp_path / "d")
    more = compare(mnist_rows({**base, "pixel_shuffle": [0.001, 0.0011, 0.0012]}, latent=1000,
                              settings={"data.resize": "aebench"}), tmp_path / "e")  # fmt: skip
    assert len(more.differences) > len(fewer.differences) and fewer.closeness < more.closeness  # the protocol first


def test_the_first_screen_gives_every_other_table_beside_the_study_its_count_inside(tmp_path: Path) -> None:
    """More experiments beside the study: one on it (every value inside), one far off (2x the MSE and MAE), one at
    latent 32 (not at the study's latent: left out)."""
    near = [0.00084, 0.00086, 0.00088]
    rows = mnist_rows({"baseline": near, "pixel_shuffle": [0.0011, 0.00118, 0.00125]}, latent=1000)
    rows += [{**r, "experiment": "near", "mae": 0.0101 + 0.0001 * r["seed"]}
             for r in mnist_rows({"baseline": near}, latent=1000)]  # fmt: skip
    rows += [{**r, "experiment": "far"} for r in mnist_rows({"baseline": [2 * v for v in near]}, latent=1000)]
    rows += [{**r, "experiment": "small"} for r in mnist_rows({"baseline": near}, latent=32)]  # not the study's latent
    write_report([write_results(tmp_path / "results", rows)], tmp_path / "report", command="test")
    readme = (tmp_path / "report" / "README.md").read_text()
    first, also = readme.split("**The other tables beside the study:**")
    also = also.split("\n## ")[0]
    assert "mnist (study)" in first and "(near)" not in first  # the table with more techniques leads
    lines = {line.split("(")[1].split(")")[0]: line for line in also.splitlines() if line.startswith("- [mnist")}
    assert set(lines) == {"near", "far"}
    assert "3 of 3 values inside" in lines["near"] and "MAE +0.0 %," in lines["near"]  # a rounded 0 has no side
    assert "1 of 3 values inside" in lines["far"]  # its accuracy alone
    far = (2 * np.mean(near) / published("baseline") - 1) * 100
    assert (
        f"MSE {far:+.1f} %" in lines["far"] and f"MAE {(20 * np.mean(near) / 0.0102 - 1) * 100:+.1f} %" in lines["far"]
    )


PROXY = PROXIES["cifar10-jpeg"]
TECHNIQUES = ("baseline", "pixel_shuffle", "progressive_resizing", "feature_loss", "pca")


def proxy_rows(accuracy: dict[str, list[float]], dataset: str = "cifar10-jpeg") -> list[dict]:
    """Rows of the JPEG copy at the study's CIFAR-10 size: MSE equal across techniques (±2 %), accuracy as given."""
    return [make_row("cifar10-jpeg", dataset, t, s, config_hash=f"{t[:4]}{s}", mse=0.0043 * (1 + 0.01 * (s - 1)),
                     mae=0.046, accuracy=accuracy.get(t, [0.40, 0.41, 0.42])[s], n_train=50_000, n_test=10_000,
                     epochs=15, channels=3, image_size=32, latent=1000, native_pixels=3072, accuracy_clean=0.80)
            for t in TECHNIQUES for s in SEEDS]  # fmt: skip


def proxy_comparison(rows: list[dict], tmp: Path):
    stats, _ = stats_of(rows, tmp)
    return comparison("cifar10-jpeg", stats, frame_of(rows, tmp / "frame"))


def test_the_cifar10_claim_is_checked_on_the_proxy_and_follows_its_numbers(tmp_path: Path) -> None:
    best = {"baseline": [0.460, 0.462, 0.458], "pixel_shuffle": [0.470, 0.475, 0.473],
            "progressive_resizing": [0.460, 0.465, 0.461], "feature_loss": [0.620, 0.625, 0.618]}  # fmt: skip
    comp = proxy_comparison(proxy_rows(best), tmp_path / "best")
    assert comp is not None and [c.dataset for c, _ in comp.claims] == ["cifar10"]
    assert "**holds**" in words.claim_verdict(*comp.claims[0])
    tie = {**best, "feature_loss": [0.470, 0.460, 0.480], "baseline": [0.465, 0.470, 0.460]}
    verdict = words.claim_verdict(*proxy_comparison(proxy_rows(tie), tmp_path / "tie").claims[0])
    assert "**not shown**" in verdict and "feature_loss" in verdict.split("a tie")[1]
    worse = {**best, "feature_loss": [0.300, 0.305, 0.297], "pixel_shuffle": [0.550, 0.552, 0.549]}
    verdict = words.claim_verdict(*proxy_comparison(proxy_rows(worse), tmp_path / "worse").claims[0])
    assert "**does not hold**: pixel_shuffle is best on Accuracy" in verdict


def test_the_proxy_label_is_beside_every_published_cifar10_number(tmp_path: Path) -> None:
    accuracy = {"feature_loss": [0.62, 0.63, 0.61]}
    comp = proxy_comparison(proxy_rows(accuracy), tmp_path / "alone")
    assert set(comp.frame["proxy"]) == {PROXY.label} and PROXY.label in comp.study.name
    assert comp.frame["study"].iloc[0] == ANCHORS[("cifar10", "baseline")].mae  # the published CIFAR-10 values
    assert comp.differences[0].startswith("data: cifar10-jpeg, a lossy JPEG copy of CIFAR-10")
    rows = proxy_rows(accuracy) + mnist_rows({"baseline": [0.001, 0.0011, 0.0012]})
    folder = write_results(tmp_path / "results", rows)
    write_report([folder], tmp_path / "report", command="test")
    study = pd.read_csv(tmp_path / "report" / "tables" / "study.csv", keep_default_na=False)
    published = study[study["study"].isin([getattr(a, m) for (d, _), a in ANCHORS.items() if d == "cifar10"
                                           for m in ("mae", "mse", "accuracy")] + [CLEAN_ACCURACY["cifar10"]])]  # fmt: skip
    assert len(published) >= 3 * 4 + 1 and set(published["table"]) == {"cifar10-jpeg"}
    assert set(study.loc[study["table"] == "cifar10-jpeg", "proxy"]) == {PROXY.label}
    assert set(study.loc[study["table"] == "mnist", "proxy"]) == {""}  # the study's own dataset carries none
    readme = (tmp_path / "report" / "README.md").read_text()
    heading = next(line for line in readme.splitlines() if line.startswith("## CIFAR-10"))
    assert PROXY.label in heading
    first = readme.split(heading)[1].split("\n## ")[0]  # its section: the verdict, the claim, the table
    assert first.count(PROXY.label) >= 3
    page = (tmp_path / "report" / "cifar10-jpeg_cifar10-jpeg.md").read_text()
    assert page.count(PROXY.label) >= 2  # its section and its interval table (the rest is on the first screen)


def test_a_dataset_named_like_no_study_dataset_or_proxy_is_not_compared(tmp_path: Path) -> None:
    comp = proxy_comparison(proxy_rows({}, dataset="cifar10-png"), tmp_path)
    assert comp is None


def test_a_table_with_some_of_the_studys_techniques_is_judged_so_far(tmp_path: Path) -> None:
    comp = compare(mnist_rows({"baseline": [0.00085, 0.0009, 0.00095]}), tmp_path)
    assert "baseline" not in comp.absent and {"pixel_shuffle", "feature_loss"} <= set(comp.absent)
    assert "reproduces**" not in words.study_verdict(comp)  # the whole table was not run: no verdict on it
