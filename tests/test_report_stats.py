"""The statistics frame: its numbers recomputed by hand, and rows built so that a careless rule would make a claim
false (a best without a test, a test across settings or recipes, a flagged or unequally timed technique ranked)."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from report_rows import frame_of, make_row, record, stats_of
from scipy import stats as sps

from aebench.reporting import words
from aebench.reporting.flags import colour_images, sanity_flags
from aebench.reporting.rows import load, read_samples
from aebench.reporting.stats import estimate, holm, paired

SEEDS = (0, 1, 2)


def rows_for(values: dict[str, list[float]], metric: str = "mse", **fields) -> list[dict]:
    """ok rows, one per technique and seed, ``metric`` set per seed (other metrics random but fixed)."""
    return [make_row("exp", "digits", t, s, config_hash=f"{t[:3]}{s}", **{metric: v, **fields})
            for t, per_seed in values.items() for s, v in zip(SEEDS, per_seed)]  # fmt: skip


def test_the_intervals_are_students_t_and_the_prediction_interval_is_for_one_new_run() -> None:
    x = np.array([0.010, 0.012, 0.017])
    e = estimate(x)
    t, sd = sps.t.ppf(0.975, 2), x.std(ddof=1)
    assert (e["n"], e["mean"], e["sd"]) == (3, pytest.approx(x.mean()), pytest.approx(sd))
    assert e["ci_high"] - e["mean"] == pytest.approx(t * sd / math.sqrt(3))
    assert e["pi_high"] - e["mean"] == pytest.approx(t * sd * math.sqrt(1 + 1 / 3))
    one = estimate([0.5])
    assert one["mean"] == 0.5 and math.isnan(one["sd"]) and math.isnan(one["pi_low"])


def test_a_paired_difference_uses_only_the_seeds_both_ran() -> None:
    a = pd.Series([1.0, 2.0, 3.5, 9.0], index=[0, 1, 2, 3])
    b = pd.Series([0.5, 1.0, 2.0], index=[0, 1, 2])
    e, p, note = paired(a, b)
    assert e["n"] == 3 and e["mean"] == pytest.approx(1.0) and note == ""
    assert p == pytest.approx(sps.ttest_rel([1.0, 2.0, 3.5], [0.5, 1.0, 2.0]).pvalue)
    assert paired(a[:2], b[:2])[2] == "2 paired seeds; a test needs 3"
    assert paired(a[:3], a[:3] - 1)[2].startswith("no spread")


def test_holm_adjusts_one_family() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])


def test_the_frame_holds_the_rows_numbers_and_one_holm_family_per_table(tmp_path: Path) -> None:
    values = {"baseline": [0.010, 0.011, 0.012], "other": [0.020, 0.022, 0.021], "third": [0.0101, 0.0112, 0.0119]}
    stats, _ = stats_of(rows_for(values), tmp_path)
    other = record(stats, "other")
    assert other["mean"] == pytest.approx(np.mean(values["other"])) and other["n"] == 3
    assert other["diff"] == pytest.approx(np.mean(np.subtract(values["other"], values["baseline"])))
    tested = stats[stats["note"] == ""]
    assert (stats["tests"] == len(tested)).all() and len(tested) == 2 * stats["metric"].nunique()
    assert list(tested["p_holm"]) == pytest.approx(holm(list(tested["p"])))
    assert record(stats, "baseline")["note"] == "the baseline"


def test_best_only_where_a_paired_test_backs_it_else_a_tie(tmp_path: Path) -> None:
    clear = {"baseline": [0.010, 0.011, 0.012], "worse": [0.020, 0.0215, 0.023], "worst": [0.030, 0.0312, 0.0335]}
    stats, _ = stats_of(rows_for(clear), tmp_path / "clear")
    assert record(stats, "baseline")["standing"] == "best" and record(stats, "worse")["standing"] == ""
    assert "**baseline** best" in words.best_line(stats, ("mse",))
    close = {"baseline": [0.010, 0.011, 0.012], "other": [0.0101, 0.0109, 0.0121]}  # a −0.000003 kind of gap
    stats, _ = stats_of(rows_for(close), tmp_path / "close")
    assert {record(stats, t)["standing"] for t in close} == {"tie"}
    line = words.best_line(stats, ("mse",))
    assert "tie: " in line and "best" not in line.split("(")[0] and "**" not in line


def test_a_flagged_technique_is_neither_tested_nor_ranked(tmp_path: Path) -> None:
    values = {"baseline": [0.010, 0.011, 0.012], "collapsed": [0.001, 0.001, 0.0011]}
    rows = rows_for(values, mse_mean_image=0.0005)  # every technique no better than the mean image
    stats, flags = stats_of(rows, tmp_path)
    assert set(flags["label"]) == {"ignores its input"}
    assert record(stats, "collapsed")["note"].startswith("flagged") and record(stats, "collapsed")["standing"] == ""


@pytest.mark.parametrize(
    ("fields", "label"),
    [
        ({"accuracy_clean": 0.2, "accuracy": 0.15}, "weak classifier"),
        ({"accuracy": 0.12}, "accuracy near chance"),
        ({"output_spread": 0.01}, "near-constant output"),
    ],
)
def test_each_sanity_flag_fires_on_its_rows(tmp_path: Path, fields: dict, label: str) -> None:
    rows = rows_for({"baseline": [0.01, 0.011, 0.012], "other": [0.02, 0.021, 0.022]}, **fields)
    assert label in set(stats_of(rows, tmp_path)[1]["label"])


def test_a_lossless_reference_and_too_few_seeds_are_flagged(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.01, 0.011, 0.012], "pca": [1e-7, 1e-7, 1.1e-7]})
    rows += [make_row("exp", "digits", "single", 0, config_hash="si0")]
    stats, flags = stats_of(rows, tmp_path)
    assert set(flags["label"]) == {"lossless", "too few seeds"}
    assert record(stats, "single")["note"] == "flagged: too few seeds"


def test_two_settings_are_two_tables_and_no_test_crosses_them(tmp_path: Path) -> None:
    three = rows_for({"baseline": [0.010, 0.011, 0.012], "pixel_shuffle": [0.020, 0.022, 0.021]}, epochs=3)
    six = [make_row("exp", "digits", "baseline", s, config_hash=f"six{s}", mse=0.005, epochs=6) for s in SEEDS]
    frame = frame_of(three + six, tmp_path)
    assert list(dict.fromkeys(frame["table"])) == ["digits (3 epochs)", "digits (6 epochs)"]
    stats, _ = stats_of(three + six, tmp_path / "again")
    mine = stats[(stats["technique"] == "pixel_shuffle") & (stats["metric"] == "mse")].iloc[0]
    assert mine["table"] == "digits (3 epochs)" and mine["diff"] == pytest.approx(np.mean([0.010, 0.011, 0.009]))
    assert set(stats.loc[stats["table"] == "digits (6 epochs)", "technique"]) == {"baseline"}


def test_seeds_of_two_recipes_are_never_averaged(tmp_path: Path) -> None:
    old = [make_row("exp", "digits", "other", s, config_hash=f"o{s}", recipe_hash="r1", mse=0.5) for s in SEEDS]
    new = [make_row("exp", "digits", "other", s, config_hash=f"n{s}", recipe_hash="r2", mse=0.1,
                    finished_at=f"2025-02-0{s + 1}T10:00:00") for s in SEEDS]  # fmt: skip
    frame = frame_of(old + new, tmp_path)
    assert list(frame["mse"]) == [0.1] * 3 and frame.attrs["superseded"] == 3


def test_train_times_under_unequal_conditions_rank_nothing(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [10.0, 11.0, 12.0], "other": [50.0, 52.0, 51.0]}, metric="train_seconds", threads=1)
    rows[3]["threads"] = 4
    stats, _ = stats_of(rows, tmp_path)
    other = record(stats, "other", "train_seconds")
    assert "not like-for-like" in other["caveat"] and "threads per cell" in other["caveat"]
    assert {record(stats, t, "train_seconds")["standing"] for t in ("baseline", "other")} == {""}
    assert "times not like-for-like" in words.test_words(other)


def test_a_cell_skipped_before_loading_its_data_joins_the_table_it_agrees_with(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.01, 0.011, 0.012]})
    rows.append(make_row("exp", "digits", "needs_weights", 0, "skipped", config_hash="nw0", n_train=None, n_test=None))
    frame = frame_of(rows, tmp_path)
    assert frame.loc[frame["technique"] == "needs_weights", "table"].iloc[0] == "digits"


def test_a_sweep_axis_is_a_setting(tmp_path: Path) -> None:
    rows = [make_row("exp", "digits", "baseline", s, config_hash=f"a{lat}{s}", axes={"model.latent": lat})
            for lat in (8, 32) for s in SEEDS]  # fmt: skip
    assert list(dict.fromkeys(frame_of(rows, tmp_path)["table"])) == [
        "digits (model.latent 8)",
        "digits (model.latent 32)",
    ]


def test_the_channel_artefact_fires_on_the_committed_latent32_seed_0_only(tmp_path: Path) -> None:
    shutil.copytree(REPO / "report" / "results", tmp_path / "results", ignore=shutil.ignore_patterns("*.pt"))
    frame = load(sorted((tmp_path / "results").glob("*/")))
    ok = frame[frame["status"] == "ok"]
    flags = sanity_flags(ok)
    found = flags[flags["label"] == "channel artefact"]
    assert [(t, s) for t, s in zip(found["table"], found["seed"])] == [("mnist (mnist-latent32)", 0)]
    assert "in 4 of its saved" in found["reason"].iloc[0]
    row = ok[(ok["experiment"] == "mnist-latent32") & (ok["technique"] == "baseline") & (ok["seed"] == 0)].iloc[0]
    assert colour_images(read_samples(row.to_dict())) == 4
