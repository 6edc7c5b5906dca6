"""The comparison with the study: each claim sentence, interval, ratio, rank correlation and caveat follows the rows
(fed rows that make each statement false, and checked that it changes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aebench.reporting.anchors import ANCHORS, STUDY_RUNS
from aebench.reporting.groups import Group
from aebench.reporting.study import study_comparison
from aebench.results.settings import Setting

SEEDS = (0, 1, 2)


def group(experiment: str, dataset: str) -> Group:
    """The comparison group of a study-length run on ``dataset``."""
    study = STUDY_RUNS[dataset]
    setting = Setting(dataset, study.epochs, None, study.n_train, study.n_test, 32, 3, 1000, "none", "unknown", 2)
    return Group(experiment, dataset, setting, dataset, f"{experiment}_{dataset}")


MNIST, CIFAR = group("mnist", "mnist"), group("cifar", "cifar10")
STUDY_LIKE = {  # a config matching the study's settings
    "data": {"image_size": 32, "channels": 3, "normalize": "imagenet", "augment": True},
    "train": {"batch_size": 128, "optimizer": "adam"},
    "model": {"latent": 1000},
    "classifier": {"model": "resnet34"},
}


def rows_for(dataset: str, values: dict[str, dict[str, float]], **fields: object) -> pd.DataFrame:
    """Three seeds per technique around the given means (a small seed-dependent wobble), plus any row fields."""
    study = STUDY_RUNS[dataset]
    base = {"epochs": study.epochs, "n_train": study.n_train, "n_test": study.n_test, "device": "cpu", **fields}
    records = []
    for technique, metrics in values.items():
        for seed in SEEDS:
            wobble = 1 + 0.01 * (seed - 1)
            records.append(
                {
                    "experiment": dataset,
                    "dataset": dataset,
                    "technique": technique,
                    "seed": seed,
                    "status": "ok",
                    "reason": "",
                    "role": "reference" if technique == "pca" else "compared",
                    "psnr": 30.0,
                    "ssim": 0.9,
                    "accuracy_clean": 0.99,
                    "train_seconds": 100.0 * wobble,
                    **{m: v * wobble for m, v in metrics.items()},
                    **base,
                }
            )
    return pd.DataFrame(records)


def published(dataset: str, techniques: tuple[str, ...]) -> dict[str, dict[str, float]]:
    """The study's MAE, MSE and accuracy of ``techniques`` on ``dataset``."""
    return {t: {m: getattr(ANCHORS[(dataset, t)], m) for m in ("mae", "mse", "accuracy")} for t in techniques}


def mnist_values(**changes: dict[str, float]) -> dict[str, dict[str, float]]:
    """The study's MNIST numbers for three techniques (the baseline best on all three measures), with changes."""
    values = published("mnist", ("baseline", "pixel_shuffle", "progressive_resizing"))
    values["pca"] = {"mae": 0.001, "mse": 0.00001, "accuracy": 0.995}  # a reference: better, but never a contender
    for technique, metrics in changes.items():
        values[technique] = {**values[technique], **metrics}
    return values


class Flagged:
    """Sanity flags as the report passes them: a reason per technique, on the given metrics (default all)."""

    def __init__(self, reasons: dict[str, str], metrics: tuple[str, ...] | None = None) -> None:
        self.reasons, self.metrics = reasons, metrics

    def why_not(self, technique: str, metric: str) -> str | None:
        covered = technique in self.reasons and (self.metrics is None or metric in self.metrics)
        return f"flagged: {self.reasons[technique]}" if covered else None


def claim(comparison) -> str:
    (sentence,) = comparison.claims
    return sentence


def test_mnist_claim_holds_then_fails_when_another_technique_wins_a_measure() -> None:
    holds = study_comparison(MNIST, rows_for("mnist", mnist_values()), {})
    assert "**Holds**" in claim(holds) and "pca" not in claim(holds)  # the reference does not compete
    worse = study_comparison(MNIST, rows_for("mnist", mnist_values(pixel_shuffle={"mse": 0.0005})), {})
    assert "**Does not hold**" in claim(worse) and "MSE: pixel_shuffle 0.000500 beats baseline" in claim(worse)


def test_a_claim_without_its_technique_or_with_it_flagged_is_untested() -> None:
    values = mnist_values()
    del values["baseline"]
    gone = study_comparison(MNIST, rows_for("mnist", values), {})
    assert "**Untested here**: no usable MAE of baseline (not run)." in claim(gone)
    flags = Flagged({"baseline": "output ignores input"})
    flagged = study_comparison(MNIST, rows_for("mnist", mnist_values()), {}, flags)
    assert "**Untested here**: no usable MAE of baseline (flagged: output ignores input)." in claim(flagged)
    assert not any("baseline" in order for order in flagged.ordering.numbers["ours"])  # nor ranked
    barred = "No claim on MAE, MSE, Accuracy, Train time (s) of baseline (flagged: output ignores input)."
    assert barred in flagged.caveats
    table = flagged.table.numbers.set_index(["technique", "metric"])
    assert table.loc[("baseline", "mse"), "flag"] == "flagged: output ignores input"  # shown, marked


def test_a_flag_on_one_metric_bars_only_that_metric() -> None:
    flags = Flagged({"baseline": "near chance"}, metrics=("accuracy",))
    comparison = study_comparison(MNIST, rows_for("mnist", mnist_values()), {}, flags)
    assert "**Untested here**: no usable Accuracy of baseline (flagged: near chance)." in claim(comparison)
    orders = comparison.ordering.numbers.set_index("metric")["ours"]
    assert orders["mse"].startswith("baseline") and "baseline" not in orders["accuracy"]


def test_a_claim_held_by_the_means_only_says_it_is_not_significant() -> None:
    close = mnist_values(pixel_shuffle={"mse": ANCHORS[("mnist", "baseline")].mse * 1.02})
    rows = rows_for("mnist", close)
    noise = rows["technique"].eq("pixel_shuffle") & rows["seed"].eq(0)
    rows.loc[noise, "mse"] *= 0.96  # one seed of pixel_shuffle beats the baseline: the margin is noise
    sentence = claim(study_comparison(MNIST, rows, {}))
    assert "**Holds** (by the means; MSE against pixel_shuffle not significant at p < 0.05)" in sentence
    one_seed = claim(study_comparison(MNIST, rows[rows["seed"] == 0], {}))
    assert "not testable with 1 paired seed" in one_seed
    shuffle, baseline = (rows["technique"] == t for t in ("pixel_shuffle", "baseline"))
    rows.loc[shuffle, "mse"] = rows.loc[baseline, "mse"].to_numpy() + 0.0001  # worse by the same on every seed
    assert "**Holds** (by the means; MSE not testable (no spread" in claim(study_comparison(MNIST, rows, {}))


def test_a_claim_that_fails_names_the_measures_whose_tests_show_it() -> None:
    baseline_mse = ANCHORS[("mnist", "baseline")].mse
    rows = rows_for("mnist", mnist_values(pixel_shuffle={"accuracy": 0.995, "mse": baseline_mse * 0.97}))
    noise = rows["technique"].eq("pixel_shuffle") & rows["seed"].eq(0)
    rows.loc[noise, "mse"] *= 1.04  # pixel_shuffle wins MSE by the means, but loses it on seed 0
    sentence = claim(study_comparison(MNIST, rows, {}))
    assert "**Does not hold** (shown on Accuracy (Holm p=" in sentence
    assert "by the means only on the rest: MSE against pixel_shuffle not significant at p < 0.05)" in sentence
    assert "Accuracy: pixel_shuffle 0.9950 beats baseline 0.9900 (Δ baseline − pixel_shuffle -0.0050" in sentence
    rows.loc[rows["technique"].eq("pixel_shuffle"), "accuracy"] = 0.97  # now only the weak MSE margin fails it
    weak = claim(study_comparison(MNIST, rows, {}))
    assert "**Does not hold** (by the means only; MSE against pixel_shuffle not significant at p < 0.05)" in weak


def test_a_failing_measure_is_shown_only_when_its_holm_adjusted_p_is_below_alpha() -> None:
    rows = rows_for("mnist", mnist_values())
    baseline, shuffle = (rows["technique"].eq(t) for t in ("baseline", "pixel_shuffle"))
    gains = np.array([0.002, 0.004, 0.003])  # raw p = 0.035: below ALPHA only where Holm multiplies it by 1
    rows.loc[shuffle, "accuracy"] = rows.loc[baseline, "accuracy"].to_numpy() + gains
    raw = stats.ttest_1samp(-gains, 0.0).pvalue
    largest = claim(study_comparison(MNIST, rows, {}))  # MAE and MSE clear (tiny p): accuracy's p is the largest, × 1
    assert f"**Does not hold** (shown on Accuracy (Holm p={raw:.3f})):" in largest
    rows.loc[baseline & rows["seed"].eq(0), "mse"] *= 1.45  # the baseline best on MSE by the means only (p ≈ 0.3)
    sentence = claim(study_comparison(MNIST, rows, {}))
    assert f"p={raw:.3f}, Holm p={2 * raw:.3f} over 3 measures" in sentence  # now second largest of 3: × 2
    assert "**Does not hold** (by the means only; Accuracy against pixel_shuffle not significant" in sentence


def cifar_values(feature_mse: float) -> dict[str, dict[str, float]]:
    out = published("cifar10", ("baseline", "pixel_shuffle", "feature_loss"))
    out["feature_loss"]["mse"] = feature_mse
    return out


def test_cifar_claim_needs_equal_mse_as_well_as_the_best_accuracy() -> None:
    base = ANCHORS[("cifar10", "baseline")].mse
    holds = claim(study_comparison(CIFAR, rows_for("cifar10", cifar_values(base * 1.05)), {}))
    assert "**Holds**" in holds and "MSE equal to baseline's within ±10%" in holds
    fails = claim(study_comparison(CIFAR, rows_for("cifar10", cifar_values(base * 2)), {}))
    assert "**Does not hold**" in fails and "MSE not equal to baseline's" in fails and "ratio 2.00" in fails
    alone = cifar_values(base)
    del alone["baseline"]
    untested = claim(study_comparison(CIFAR, rows_for("cifar10", alone), {}))
    assert "**Untested here**: no usable MSE of baseline (not run)." in untested


def test_table_ratio_and_interval_follow_the_rows() -> None:
    rows = rows_for("mnist", mnist_values(baseline={"mse": 0.002}))
    table = study_comparison(MNIST, rows, {}).table.numbers.set_index(["technique", "metric"])
    values = rows[rows["technique"] == "baseline"]["mse"].to_numpy()
    half = stats.t.ppf(0.975, 2) * values.std(ddof=1) / np.sqrt(3)
    record = table.loc[("baseline", "mse")]
    assert record["ratio"] == pytest.approx(values.mean() / ANCHORS[("mnist", "baseline")].mse)
    assert record["ci_low"] == pytest.approx(values.mean() - half)
    assert not record["study_in_ci"]  # 0.000854 is far below our 0.002 ± 0.00003
    assert table.loc[("pixel_shuffle", "mse"), "study_in_ci"]  # the study's own numbers, wobbled: inside
    assert "pca" not in table.index.get_level_values("technique")  # not a technique of the study
    clean = table.loc[("original images", "accuracy")]
    assert clean["study"] == pytest.approx(0.9912)
    # every row carries the one classifier's 0.99: one measurement, no interval, so no in-or-out verdict
    assert clean["seeds"] == 1 and pd.isna(clean["ci_low"]) and clean["study_in_ci"] is None


def test_rank_correlation_is_plus_one_for_the_study_order_and_minus_one_reversed() -> None:
    same = study_comparison(MNIST, rows_for("mnist", mnist_values()), {}).ordering.numbers.set_index("metric")
    assert same.loc["mse", "spearman"] == pytest.approx(1.0) and same.loc["mse", "techniques"] == 3
    flipped = mnist_values(baseline={"mse": 0.003}, progressive_resizing={"mse": 0.002}, pixel_shuffle={"mse": 0.001})
    reverse = study_comparison(MNIST, rows_for("mnist", flipped), {}).ordering.numbers.set_index("metric")
    assert reverse.loc["mse", "spearman"] == pytest.approx(-1.0)
    assert same.loc["mse", "p_exact"] == pytest.approx(1 / 3) == reverse.loc["mse", "p_exact"]  # 3 techniques: 2/3!


def test_caveats_name_a_shorter_smaller_run_and_only_then() -> None:
    full = study_comparison(MNIST, rows_for("mnist", mnist_values()), {}).caveats
    assert not any("Shorter" in c or "Smaller" in c for c in full)
    reduced = study_comparison(MNIST, rows_for("mnist", mnist_values(), epochs=3, n_train=6000), {}).caveats
    assert "**Shorter** than the study: 3 epochs (the study: 15)." in reduced
    assert "**Smaller** than the study: 6,000 training images (the study: 60,000)." in reduced


def test_caveats_name_each_setting_that_differs_from_the_study() -> None:
    values = cifar_values(ANCHORS[("cifar10", "baseline")].mse)
    configs = dict.fromkeys(values, STUDY_LIKE)
    assert not any(
        "Configured differently" in c for c in study_comparison(CIFAR, rows_for("cifar10", values), configs).caveats
    )
    cnn = {**STUDY_LIKE, "classifier": {"model": "cnn"}}
    trained = {**cnn, "params": {"feature_net": "trained", "term_scale": "auto"}}
    configs = {"baseline": cnn, "pixel_shuffle": cnn, "feature_loss": trained}
    caveats = study_comparison(CIFAR, rows_for("cifar10", values), configs).caveats
    assert any(
        c.startswith("**Configured differently**: classifier.model cnn (the study: resnet34) for every technique")
        for c in caveats
    )
    (net,) = [c for c in caveats if "params.feature_net trained (the study: vgg16_bn) for feature_loss" in c]
    assert net.endswith("another network; its train time includes training that network, which the study's "
                        "pretrained VGG16-BN did not need.")  # fmt: skip
    assert any("params.term_scale auto (the study: none) for feature_loss" in c for c in caveats)
    said = "Configured otherwise than the study's (see above): feature_loss: classifier.model, params.feature_net, "
    assert said + "params.term_scale; pixel_shuffle: classifier.model; baseline: classifier.model." in claim(
        study_comparison(CIFAR, rows_for("cifar10", values), configs)
    )
    alike = dict.fromkeys(values, STUDY_LIKE)
    assert "Configured otherwise" not in claim(study_comparison(CIFAR, rows_for("cifar10", values), alike))
    configs["feature_loss"] = {**cnn, "params": {"feature_net": "resnet18"}}  # pretrained: nothing trained
    (other,) = [c for c in study_comparison(CIFAR, rows_for("cifar10", values), configs).caveats if "feature_net" in c]
    assert other.endswith("measured on another network.")


def test_measured_terms_are_quoted_and_absent_techniques_named() -> None:
    rows = rows_for("cifar10", cifar_values(0.004))
    rows["measured"] = [{"first_step_pixel": 0.07} if t == "feature_loss" else None for t in rows["technique"]]
    rows = pd.concat(
        [rows, rows_for("cifar10", {"resnet_pretrained": {}}).assign(status="skipped", reason="no weights")]
    )
    caveats = study_comparison(CIFAR, rows, {}).caveats
    assert "Measured by feature_loss while training (mean over 3 seeds): first_step_pixel 0.07." in caveats
    (gaps,) = [c for c in caveats if c.startswith("Not compared, no usable result here:")]
    assert "resnet_pretrained (skipped: no weights)" in gaps and "resnet_scratch (not run)" in gaps
    assert "feature_loss" not in gaps


def test_no_comparison_outside_the_study_datasets() -> None:
    rows = rows_for("mnist", mnist_values()).assign(dataset="fashion-mnist")
    fashion = Group("f", "fashion-mnist", MNIST.setting, "fashion-mnist", "f_fashion-mnist")
    assert study_comparison(fashion, rows, {}) is None


def test_a_learning_rate_other_than_the_study_pick_is_named() -> None:
    values = {**mnist_values(), "resnet_scratch": {"mae": 0.018, "mse": 0.0036, "accuracy": 0.965}}
    at = {t: {**STUDY_LIKE, "train": {**STUDY_LIKE["train"], "lr": 1e-3}} for t in values}
    at["progressive_resizing"] = {**STUDY_LIKE, "train": {**STUDY_LIKE["train"], "lr": 1.74e-4}}
    caveats = study_comparison(MNIST, rows_for("mnist", values), at).caveats
    (lr,) = [c for c in caveats if c.startswith("**Configured differently**: train.lr")]
    assert lr.startswith("**Configured differently**: train.lr 0.001 (the study: 0.0001) for resnet_scratch;")


def train_time_cells(device: object) -> tuple[dict[str, str], pd.DataFrame, list[str]]:
    """Per technique the "Study in CI" cell of train time, the table's numbers and the ordering's footnotes, for
    rows timed on ``device`` whose times wobble around the study's own."""
    times = {t: {"train_seconds": ANCHORS[("mnist", t)].train_seconds} for t in mnist_values() if t != "pca"}
    values = mnist_values(**times)
    comparison = study_comparison(MNIST, rows_for("mnist", values, device=device), {})
    cells = {r[0]: r[7] for r in comparison.table.rows if r[1] == "Train time (s)"}
    numbers = comparison.table.numbers.set_index(["technique", "metric"])
    return cells, numbers, comparison.ordering.footnotes


def test_train_time_on_other_hardware_gets_no_interval_verdict_but_keeps_its_ratio() -> None:
    """The study's times wobbled by 1 %: on a GPU they lie in our interval ("yes"); on the CPU the same times get
    no verdict, the ratio stays, and the ordering says what agreeing on hardware-bound times means."""
    on_gpu, numbers, notes = train_time_cells("cuda:0")
    assert on_gpu["baseline"] == "yes" and numbers.loc[("baseline", "train_seconds"), "study_in_ci"]
    assert not any("not that the times agree" in n for n in notes)
    on_cpu, numbers, notes = train_time_cells("cpu")
    assert set(on_cpu.values()) == {"– (other hardware)"}
    record = numbers.loc[("baseline", "train_seconds")]
    assert record["study_in_ci"] is None and record["ratio"] == pytest.approx(1.0)
    assert numbers.loc[("baseline", "mse"), "study_in_ci"]  # quality keeps its verdict on any hardware
    (time_note,) = [n for n in notes if "not that the times agree" in n]
    assert "ours on cpu, the study's on a Colab GPU" in time_note and "not known to be like-for-like" in time_note
    unrecorded, _, _ = train_time_cells(None)
    assert set(unrecorded.values()) == {"– (hardware not recorded)"}
