"""Statistics across seeds: mean, sd and a 95 % t-interval per metric, and each technique's paired difference
from the baseline on the seeds both ran (t-interval and paired t-test p-value; not significant at p >= 0.05).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from aebench.results.schema import QUALITY, SPECS
from aebench.results.summary import finished

ALPHA = 0.05  # two-sided; a difference is "real" (significant) when p < ALPHA
BASELINE = "baseline"
STAT_METRICS = (*QUALITY, "train_seconds")


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values with its sd and 95 % t-interval (sd and interval NaN for one value)."""

    mean: float
    sd: float
    n: int
    low: float
    high: float


@dataclass(frozen=True)
class Paired:
    """Technique minus baseline on the same seeds: the mean difference, its interval, and the paired t-test."""

    difference: Estimate
    p_value: float

    @property
    def significant(self) -> bool:
        return bool(self.p_value < ALPHA)


def estimate(values: np.ndarray | pd.Series) -> Estimate:
    """Mean, sd and the 95 % Student-t confidence interval of the mean."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, 1, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, sd, n, mean - half, mean + half)


def paired(technique: pd.Series, baseline: pd.Series) -> Paired:
    """Paired comparison of two per-seed series (indexed by seed) on the seeds both have.

    Identical values give p = 1; a constant non-zero difference gives p = 0 (no spread to doubt it).
    """
    both = pd.concat([technique, baseline], axis=1, join="inner").dropna()
    diff = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(dtype=float)
    difference = estimate(diff)
    if difference.n < 2:
        return Paired(difference, math.nan)
    if np.ptp(diff) <= 1e-12 * np.abs(diff).max():  # constant up to rounding: the t statistic is undefined
        return Paired(difference, 1.0 if not diff.any() else 0.0)
    return Paired(difference, float(stats.ttest_1samp(diff, 0.0).pvalue))


def per_seed(ok: pd.DataFrame, technique: str, metric: str) -> pd.Series:
    """One value per seed (the latest row wins) of a technique's finished rows."""
    return ok[ok["technique"] == technique].groupby("seed")[metric].last().astype(float)


def seed_statistics(rows: pd.DataFrame, metrics: tuple[str, ...] = STAT_METRICS) -> pd.DataFrame:
    """Long format, one row per (metric, technique) of one dataset's rows: the estimate and the paired
    difference from the baseline (NaN where there is no baseline or it is the baseline)."""
    ok = finished(rows)
    techniques = list(dict.fromkeys(ok["technique"]))
    records = []
    for metric in metrics:
        if metric not in ok or ok[metric].isna().all():
            continue
        base = per_seed(ok, BASELINE, metric) if BASELINE in techniques else None
        for technique in techniques:
            values = per_seed(ok, technique, metric)
            e = estimate(values)
            p = paired(values, base) if base is not None and technique != BASELINE else None
            d = p.difference if p else Estimate(math.nan, math.nan, 0, math.nan, math.nan)
            records.append(
                {
                    "metric": metric,
                    "technique": technique,
                    "seeds": e.n,
                    "mean": e.mean,
                    "sd": e.sd,
                    "ci_low": e.low,
                    "ci_high": e.high,
                    "paired_seeds": d.n,
                    "diff_mean": d.mean,
                    "diff_low": d.low,
                    "diff_high": d.high,
                    "p_value": p.p_value if p else math.nan,
                    "significant": p.significant if p else None,
                }
            )
    return pd.DataFrame(records)


def verdict(record: dict) -> str:
    """How a paired difference reads: 'real (p=…)', 'not significant (p=…)', or why it was not tested."""
    if pd.isna(record["p_value"]):
        return "untested (fewer than 2 paired seeds)" if record["paired_seeds"] < 2 else "–"
    word = "real" if record["significant"] else "not significant"
    return f"{word} (p={format_p(record['p_value'])})"


def format_p(p: float) -> str:
    return "–" if pd.isna(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def better(metric: str, diff: float) -> bool:
    """Whether a positive-or-negative difference from the baseline is an improvement on this metric."""
    return diff < 0 if SPECS[metric].lower_is_better else diff > 0


def difference_lines(rows: pd.DataFrame, metrics: tuple[str, ...] = ("mse", "accuracy", "train_seconds")) -> list[str]:
    """Console lines: each technique minus the baseline on the same seeds, with the 95 % CI and whether it is real."""
    table = seed_statistics(rows, metrics)
    if table.empty or BASELINE not in set(table["technique"]):
        return []
    lines = []
    for record in table[table["technique"] != BASELINE].to_dict("records"):
        spec = SPECS[record["metric"]]
        if record["paired_seeds"] == 0:
            continue
        direction = (
            "same"
            if record["diff_mean"] == 0
            else "better"
            if better(record["metric"], record["diff_mean"])
            else "worse"
        )
        interval = (
            f" [95% CI {record['diff_low']:+.{spec.digits}f}, {record['diff_high']:+.{spec.digits}f}]"
            if record["paired_seeds"] > 1
            else ""
        )
        lines.append(
            f"  {record['technique']:<22} {spec.label:<15} {record['diff_mean']:+.{spec.digits}f}{interval} "
            f"({direction}; {verdict(record)}, {record['paired_seeds']} seeds)"
        )
    return lines
