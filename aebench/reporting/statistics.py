"""Statistics across seeds: mean, sd and a 95 % t-interval per metric, and each technique's paired difference
from the group's baseline on the seeds both ran (t-interval, paired t-test, Holm-adjusted over the techniques
tested on that metric). A technique is tested only with enough paired seeds and no sanity flag on the metric; a
time difference of rows timed under other (or unrecorded) conditions carries a caveat (``conditions``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from aebench.reporting.conditions import TIME_METRICS, conditions
from aebench.reporting.sanity import MIN_SEEDS, Flags
from aebench.results.schema import QUALITY, SPECS
from aebench.results.summary import finished

ALPHA = 0.05  # two-sided; a difference is "real" (significant) when its Holm-adjusted p < ALPHA
STAT_METRICS = (*QUALITY, "train_seconds")


@dataclass(frozen=True)
class Estimate:
    """A mean over ``n`` values with its sd and 95 % t-interval (sd and interval NaN for one value)."""

    mean: float
    sd: float
    n: int
    low: float
    high: float


NO_ESTIMATE = Estimate(math.nan, math.nan, 0, math.nan, math.nan)


@dataclass(frozen=True)
class Paired:
    """Technique minus baseline on the same seeds: the mean difference, its interval, and the paired t-test."""

    difference: Estimate
    p_value: float  # NaN: not tested (under 2 pairs, or no spread)
    no_spread: bool = False  # the same non-zero difference on every seed: no t-test, nothing to doubt it with


NO_SPREAD = "no spread: the same difference on every seed, so no test"


def estimate(values: np.ndarray | pd.Series) -> Estimate:
    """Mean, sd and the 95 % Student-t confidence interval of the mean."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return NO_ESTIMATE
    mean = float(x.mean())
    if n == 1:
        return Estimate(mean, math.nan, 1, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) * sd / math.sqrt(n)
    return Estimate(mean, sd, n, mean - half, mean + half)


def paired(technique: pd.Series, baseline: pd.Series) -> Paired:
    """Paired comparison of two per-seed series (indexed by seed) on the seeds both have.

    Identical values give p = 1; a constant non-zero difference is not tested (``no_spread``): its t statistic is
    undefined, and seeds that never vary say nothing about how far the difference would."""
    both = pd.concat([technique, baseline], axis=1, join="inner").dropna()
    diff = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(dtype=float)
    difference = estimate(diff)
    if difference.n < 2:
        return Paired(difference, math.nan)
    if np.ptp(diff) <= 1e-12 * np.abs(diff).max():  # constant up to rounding: the t statistic is undefined
        return Paired(difference, 1.0) if not diff.any() else Paired(difference, math.nan, no_spread=True)
    return Paired(difference, float(stats.ttest_1samp(diff, 0.0).pvalue))


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (same order; each at most 1)."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted


def baseline_of(rows: pd.DataFrame) -> str | None:
    """The technique whose role is ``baseline`` (the first, if several), or None."""
    if "role" not in rows:
        return None
    found = rows.loc[rows["role"] == "baseline", "technique"]
    return str(found.iloc[0]) if len(found) else None


def per_seed(ok: pd.DataFrame, technique: str, metric: str) -> pd.Series:
    """One value per seed (the latest row wins) of a technique's finished rows."""
    return ok[ok["technique"] == technique].groupby("seed")[metric].last().astype(float)


def untested_reason(technique: str, baseline: str | None, metric: str, flags: Flags, pairs: int) -> str:
    """Why this difference is not tested ('' when it is)."""
    if baseline is None:
        return "no baseline in this table"
    if technique == baseline:
        return "the baseline"
    return (
        flags.why_not(technique, metric)
        or (f"{baseline} {flags.why_not(baseline, metric)}" if flags.why_not(baseline, metric) else "")
        or (f"{pairs} paired seed{'s' * (pairs != 1)}; a test needs {MIN_SEEDS}" if pairs < MIN_SEEDS else "")
    )


def metric_records(ok: pd.DataFrame, metric: str, baseline: str | None, flags: Flags) -> list[dict]:
    """One record per technique for one metric, the tested ones Holm-adjusted together."""
    base = per_seed(ok, baseline, metric) if baseline else None
    records = []
    for technique in dict.fromkeys(ok["technique"]):
        values = per_seed(ok, technique, metric)
        e = estimate(values)
        p = paired(values, base) if base is not None and technique != baseline else None
        d = p.difference if p else NO_ESTIMATE
        note = untested_reason(technique, baseline, metric, flags, d.n) or (NO_SPREAD if p and p.no_spread else "")
        timed = metric in TIME_METRICS and p is not None and not note
        caveat = conditions(ok[ok["technique"].isin([technique, baseline])]).time_marker() if timed else ""
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
                "p_value": p.p_value if p and not note else math.nan,
                "note": note,
                "caveat": caveat,
            }
        )
    tested = [r for r in records if not r["note"]]
    for record, adjusted in zip(tested, holm([r["p_value"] for r in tested])):
        record.update(p_holm=adjusted, tests=len(tested), significant=bool(adjusted < ALPHA))
    for record in records:
        record.setdefault("p_holm", math.nan)
        record.setdefault("tests", len(tested))
        record.setdefault("significant", None)
    return records


def seed_statistics(
    rows: pd.DataFrame, flags: Flags | None = None, metrics: tuple[str, ...] = STAT_METRICS
) -> pd.DataFrame:
    """Long format, one row per (metric, technique) of one group's rows: the estimate, the paired difference from
    the baseline, its raw and Holm-adjusted p-value (NaN where untested) and why it is untested (``note``)."""
    ok = finished(rows)
    baseline = baseline_of(ok)
    records = [
        record
        for metric in metrics
        if metric in ok and not ok[metric].isna().all()
        for record in metric_records(ok, metric, baseline, flags or Flags())
    ]
    return pd.DataFrame(records)


def format_p(p: float) -> str:
    """A table cell: '<0.001', '0.026', or '–' (untested)."""
    return "–" if pd.isna(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def p_phrase(p: float) -> str:
    """In a sentence: 'p < 0.001' or 'p = 0.026'."""
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}"


def verdict(record: dict) -> str:
    """'real (Holm p = 0.012 over 3 tests)', 'not significant (p = 0.240)', or 'not tested (why)'; a time
    difference timed under unequal or unrecorded conditions says so ('real (p = 0.010; unequal conditions)')."""
    if record["note"]:
        return f"not tested ({record['note']})"
    word = "real" if record["significant"] else "not significant"
    caveat = f"; {record['caveat']}" if record["caveat"] else ""
    if record["tests"] > 1:
        return f"{word} (Holm-adjusted {p_phrase(record['p_holm'])} over {record['tests']} tests{caveat})"
    return f"{word} ({p_phrase(record['p_value'])}{caveat})"


def better(metric: str, diff: float) -> bool:
    """Whether a difference from the baseline is an improvement on this metric."""
    return diff < 0 if SPECS[metric].lower_is_better else diff > 0


def direction(record: dict) -> str:
    if record["diff_mean"] == 0:
        return "same"
    return "better" if better(record["metric"], record["diff_mean"]) else "worse"


def difference_lines(
    rows: pd.DataFrame, metrics: tuple[str, ...] = ("mse", "accuracy", "train_seconds"), flags: Flags | None = None
) -> list[str]:
    """Console lines: each technique minus the baseline on the same seeds, with the 95 % CI and the verdict."""
    table = seed_statistics(rows, flags, metrics)
    baseline = baseline_of(finished(rows))
    if table.empty or baseline is None:
        return []
    lines = []
    for record in table[table["technique"] != baseline].to_dict("records"):
        if record["paired_seeds"] == 0:
            continue
        digits = SPECS[record["metric"]].digits
        interval = (
            f" [95% CI {record['diff_low']:+.{digits}f}, {record['diff_high']:+.{digits}f}]"
            if record["paired_seeds"] > 1
            else ""
        )
        lines.append(
            f"  {record['technique']:<22} {SPECS[record['metric']].label:<15} {record['diff_mean']:+.{digits}f}"
            f"{interval} ({direction(record)}; {verdict(record)}, {record['paired_seeds']} seeds)"
        )
    return lines
