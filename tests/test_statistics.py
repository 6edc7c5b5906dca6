"""Statistics across seeds on synthetic rows: a known difference is found real, an identical one is not."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from aebench.reporting.statistics import difference_lines, estimate, paired, seed_statistics

SEEDS = range(5)
OTHER_METRICS = {"mae": 0.1, "psnr": 20.0, "ssim": 0.5}  # equal for every technique and seed


def rows(mse: dict[str, list[float]], accuracy: dict[str, list[float]] | None = None) -> pd.DataFrame:
    """ok rows of one dataset: one row per technique and seed with the given values."""
    accuracy = accuracy or {t: [0.8] * len(v) for t, v in mse.items()}
    return pd.DataFrame(
        [
            {
                "dataset": "d",
                "technique": t,
                "role": "baseline" if t == "baseline" else "compared",
                "seed": s,
                "status": "ok",
                "mse": m,
                "accuracy": a,
                **OTHER_METRICS,
            }
            for t in mse
            for s, m, a in zip(SEEDS, mse[t], accuracy[t])
        ]
    )


def stat(table: pd.DataFrame, technique: str, metric: str = "mse") -> dict:
    return table[(table["technique"] == technique) & (table["metric"] == metric)].iloc[0].to_dict()


def test_the_interval_is_students_t() -> None:
    e = estimate([1.0, 2.0, 3.0])
    assert (e.mean, e.sd, e.n) == (2.0, 1.0, 3)
    half = 4.302652729911275 / math.sqrt(3)  # t(0.975, df=2)
    assert e.low == pytest.approx(2 - half) and e.high == pytest.approx(2 + half)
    one = estimate([5.0])
    assert one.mean == 5.0 and math.isnan(one.sd) and math.isnan(one.low)


def test_a_known_difference_is_significant_and_an_identical_one_is_not() -> None:
    rng = np.random.default_rng(0)
    base = 0.010 + 0.002 * rng.standard_normal(len(SEEDS))  # seed-to-seed spread larger than the effect
    table = seed_statistics(
        rows(
            {
                "baseline": list(base),
                "better": list(base - 0.001 + 0.0001 * rng.standard_normal(len(SEEDS))),  # paired: a real gain
                "same": list(base),
                "noisy": list(base + 0.002 * rng.standard_normal(len(SEEDS))),  # no effect, only noise
            }
        ),
        metrics=("mse",),
    )
    better = stat(table, "better")
    assert better["significant"] and better["p_value"] < 0.001
    assert better["diff_high"] < 0 and better["diff_mean"] == pytest.approx(-0.001, abs=2e-4)
    same = stat(table, "same")
    assert not same["significant"] and same["p_value"] == 1.0 and same["diff_mean"] == 0
    assert not stat(table, "noisy")["significant"]
    assert stat(table, "baseline")["significant"] is None and stat(table, "baseline")["paired_seeds"] == 0


def test_pairs_use_only_the_seeds_both_ran() -> None:
    technique = pd.Series([1.0, 2.0, 3.0], index=[0, 1, 2])
    baseline = pd.Series([0.5, 1.5], index=[1, 2])
    result = paired(technique, baseline)
    assert result.difference.n == 2 and result.difference.mean == 1.5
    assert result.no_spread and math.isnan(result.p_value)  # the same difference on both seeds: no test
    assert math.isnan(paired(technique, pd.Series([1.0], index=[0])).p_value)  # one pair: untested


def test_the_console_lines_say_which_differences_are_real() -> None:
    frame = rows(
        {"baseline": [0.010, 0.011, 0.012, 0.013, 0.014], "worse": [0.020, 0.021, 0.0225, 0.023, 0.024]},
        {"baseline": [0.80, 0.81, 0.82, 0.83, 0.84], "worse": [0.80, 0.81, 0.82, 0.83, 0.84]},
    )
    lines = difference_lines(frame, ("mse", "accuracy"))
    mse_line, accuracy_line = lines
    assert "worse" in mse_line and "MSE" in mse_line and "+0.010100" in mse_line
    assert "worse;" in mse_line and "real (p < 0.001)" in mse_line and "5 seeds" in mse_line
    assert "not significant (p = 1.000)" in accuracy_line
