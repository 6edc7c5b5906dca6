"""The one statistics frame every table, figure, sentence, console line and API answer reads: one row per (table,
metric, technique), over seeds (``COLUMNS``, ``VERSUS``). ``ci_*``: the 95 % t interval of the mean; ``pi_*``: the 95 %
prediction interval of one new run; ``diff*, p``: technique − baseline, paired on the seeds both ran, ``p_holm`` over
the table's tests; ``standing``: 'best' where the leader beats every other claimable technique in a paired test (Holm,
``lead_p``), else 'tie'; ``ref_*``: on a sweep, technique − the reference technique at each point (without one: the
technique at the axis's first point), Holm over the axis's points;
cost rows: ``cost.py``."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from aebench.reporting.cost import cost_records
from aebench.reporting.flags import MIN_SEEDS, barring, sanity_flags
from aebench.reporting.rows import SETTING, axes_of, in_order, load, setting_words, text
from aebench.results.cost import load_cost
from aebench.results.schema import QUALITY, SPECS
from aebench.results.summary import finished

ALPHA = 0.05
METRICS = (*QUALITY, "train_seconds")
TIME = ("train_seconds", "images_per_second")
CONDITIONS = {"device": "device", "precision": "precision", "threads": "threads per cell",
              "parallel_cells": "cells at once", "step_mode": "training step"}  # fmt: skip
CONTENDERS = ("baseline", "compared")
COLUMNS = ["table", "metric", "technique", "role", "n", "mean", "sd", "ci_low", "ci_high", "pi_low", "pi_high",
           "flag", "pairs", "diff", "diff_low", "diff_high", "note", "caveat", "p", "p_holm", "significant", "tests",
           "standing", "lead_p", "lead_tests", "seconds", "machine"]  # fmt: skip
VERSUS = ["series", "axis", "point", "ref_diff", "ref_low", "ref_high", "ref_p", "ref_p_holm", "ref_significant",
          "ref_tests", "ref_note"]  # fmt: skip


def estimate(values) -> dict[str, float]:
    """n, mean, sd, the 95 % confidence interval of the mean and the 95 % prediction interval of one new value."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n, mean = len(x), float(x.mean()) if len(x) else math.nan
    sd = float(x.std(ddof=1)) if n > 1 else math.nan
    t = float(stats.t.ppf(1 - ALPHA / 2, n - 1)) if n > 1 else math.nan
    ci, pi = t * sd / math.sqrt(max(n, 1)), t * sd * math.sqrt(1 + 1 / max(n, 1))
    return {"n": n, "mean": mean, "sd": sd, "ci_low": mean - ci, "ci_high": mean + ci, "pi_low": mean - pi,
            "pi_high": mean + pi}  # fmt: skip


def paired(a: pd.Series, b: pd.Series) -> tuple[dict[str, float], float, str]:
    """a − b on the seeds both have: the estimate of the differences, the paired t-test's p, and why untested."""
    both = pd.concat([a, b], axis=1, join="inner").dropna()
    diff = (both.iloc[:, 0] - both.iloc[:, 1]).to_numpy(dtype=float)
    e = estimate(diff)
    if len(diff) < MIN_SEEDS:
        return e, math.nan, f"{len(diff)} paired seed{'s' * (len(diff) != 1)}; a test needs {MIN_SEEDS}"
    if np.ptp(diff) <= 1e-12 * np.abs(diff).max():
        return (e, 1.0, "") if not diff.any() else (e, math.nan, "no spread: the same difference on every seed")
    return e, float(stats.ttest_1samp(diff, 0.0).pvalue), ""


def holm(p: list[float]) -> list[float]:
    """Holm's step-down adjustment (same order; each at most 1)."""
    order = np.argsort(p, kind="stable")
    adjusted = np.maximum.accumulate(np.minimum(1.0, (len(p) - np.arange(len(p))) * np.asarray(p, dtype=float)[order]))
    return adjusted[np.argsort(order)].tolist()


def time_caveat(ok: pd.DataFrame) -> str:
    """Why train times of these rows are not like-for-like ('' where every recorded condition agrees)."""
    if ok["technique"].nunique() < 2:
        return ""
    cols = {name: ok[c] if c in ok else pd.Series([None] * len(ok)) for c, name in CONDITIONS.items()}
    differ = [name for name, v in cols.items() if v.dropna().astype(str).nunique() > 1]
    missing = [name for name, v in cols.items() if v.isna().any() and name not in differ]
    if differ:
        return f"not like-for-like (rows differ in {', '.join(differ)})"
    return f"not known to be like-for-like (not recorded: {', '.join(missing)})" if missing else ""


def per_seed(ok: pd.DataFrame, technique: str, metric: str) -> pd.Series:
    return ok[ok["technique"] == technique].groupby("seed")[metric].last().astype(float)


def table_statistics(table: str, ok: pd.DataFrame, flags: pd.DataFrame) -> list[dict]:
    roles = dict(ok.groupby("technique", sort=False)["role"].first())
    baseline = next((t for t, r in roles.items() if r == "baseline"), None)
    caveat = time_caveat(ok)
    records = []
    for metric in (m for m in METRICS if ok[m].notna().any()):
        base = per_seed(ok, baseline, metric) if baseline else None
        for technique, role in roles.items():
            values = per_seed(ok, technique, metric)
            record = {"table": table, "metric": metric, "technique": technique, "role": role, **estimate(values)}
            record["flag"] = barring(flags, table, technique, metric)
            d, p, note = paired(values, base) if base is not None and technique != baseline else ({}, math.nan, "")
            flagged = record["flag"] or barring(flags, table, baseline or "", metric)
            note = ("the baseline" if technique == baseline else "no baseline" if base is None
                    else f"flagged: {flagged}" if flagged else note)  # fmt: skip
            d = {"n": 0, "mean": math.nan, "ci_low": math.nan, "ci_high": math.nan, **d}
            record.update(pairs=d["n"], diff=d["mean"], diff_low=d["ci_low"], diff_high=d["ci_high"], note=note)
            records.append({**record, "caveat": caveat if metric in TIME else "", "p": math.nan if note else p})
    tested = [r for r in records if not r["note"]]
    adjusted = dict(zip(map(id, tested), holm([r["p"] for r in tested])))
    for r in records:
        p_holm = adjusted.get(id(r), math.nan)
        r.update(p_holm=p_holm, significant=p_holm < ALPHA, tests=len(tested))
    standings(records, ok)
    return records


def standings(records: list[dict], ok: pd.DataFrame) -> None:
    """'best' / 'tie' per metric: the leader among the claimable techniques against each, Holm."""
    comparisons = []
    for metric in dict.fromkeys(r["metric"] for r in records):
        claimable = [r for r in records if r["metric"] == metric and r["role"] in CONTENDERS and not r["flag"]
                     and r["n"] >= MIN_SEEDS and not (metric in TIME and r["caveat"])]  # fmt: skip
        if len(claimable) < 2:
            continue
        lower = SPECS[metric].lower_is_better
        leader = min(claimable, key=lambda r: r["mean"] if lower else -r["mean"])
        for other in claimable:
            if other is not leader:
                _, p, _ = paired(per_seed(ok, leader["technique"], metric), per_seed(ok, other["technique"], metric))
                comparisons.append((leader, other, 1.0 if math.isnan(p) else p))
    adjusted = holm([p for _, _, p in comparisons])
    for (leader, other, _), p in zip(comparisons, adjusted):
        other["lead_p"] = p
        leader["standing"] = "tie" if p >= ALPHA or leader.get("standing") == "tie" else "best"
        other["standing"] = "tie" if p >= ALPHA else ""
    for r in records:
        r.update(standing=r.get("standing", ""), lead_p=r.get("lead_p", math.nan), lead_tests=len(comparisons))


def statistics(ok: pd.DataFrame, flags: pd.DataFrame, cost: pd.DataFrame | None = None) -> pd.DataFrame:
    """The statistics frame of the finished rows; ``cost``: the folders' cost records (None: none)."""
    records = []
    for table, rows in ok.groupby("table", sort=False):
        records += table_statistics(table, rows, flags) + (cost_records(table, rows, cost) if cost is not None else [])
    return versus_reference(pd.DataFrame(records, columns=COLUMNS), ok)


def sweep_points(ok: pd.DataFrame) -> pd.DataFrame:
    """Per table on a sweep: its ``series``, the ``axis`` and its ``point``. The axis is the first that varies (the
    others make series), or, with no reference technique to test against, every axis that varies together (one
    series, whose first point each point is tested against: an ablation's arms)."""
    found = {}
    for (experiment, dataset), rows in ok.groupby(["experiment", "dataset"], sort=False):
        varied = [a for a in axes_of(rows) if rows[a].dropna().map(text).nunique() > 1]
        if not varied:
            continue
        axes = varied if (rows["role"] != "reference").all() else varied[:1]
        own = {c for a in axes for c in (a, a.rsplit(".", 1)[-1])}  # ``latent`` moves with ``model.latent``
        differ = [c for c in [*SETTING[2:], *axes_of(rows)] if c not in own and rows[c].map(text).nunique() > 1]
        for table, mine in rows.groupby("table", sort=False):
            first = mine.iloc[0].to_dict()
            if all(first[a] is not None and not (isinstance(first[a], float) and math.isnan(first[a])) for a in axes):
                tags = ", ".join([experiment, setting_words(first, differ)] if differ else [experiment])
                point = first[axes[0]] if len(axes) == 1 else " · ".join(text(first[a]) for a in axes)
                found[table] = (f"{dataset} ({tags})", " × ".join(a.removeprefix("axis ") for a in axes), point)
    return pd.DataFrame.from_dict(found, orient="index", columns=VERSUS[:3])


def versus_reference(stats: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    points = sweep_points(ok)
    out = stats.assign(**{c: stats["table"].map(points[c]) for c in VERSUS[:3]}, ref_note="")
    out[["ref_diff", "ref_low", "ref_high", "ref_p", "ref_p_holm", "ref_tests"]] = math.nan
    swept = out["series"].notna() & out["metric"].isin(QUALITY)
    for (_, metric), mine in out[swept].groupby(["series", "metric"], sort=False):
        mine = in_order(mine)
        refs = mine[mine["role"] == "reference"]  # else each technique's own first point
        for i, r in mine.iterrows():
            at = refs[refs["table"] == r["table"]] if len(refs) else mine[mine["technique"] == r["technique"]][:1]
            if not len(at) or at.index[0] == i:
                out.loc[i, "ref_note"] = "the reference" if len(at) else "no reference"
                continue
            ref = at.iloc[0]
            d, p, note = paired(*(per_seed(ok[ok["table"] == x["table"]], x["technique"], metric) for x in (r, ref)))
            flagged = r["flag"] or ref["flag"]
            out.loc[i, ["ref_diff", "ref_low", "ref_high"]] = [d["mean"], d["ci_low"], d["ci_high"]]
            out.loc[i, ["ref_p", "ref_note"]] = [math.nan, f"flagged: {flagged}"] if flagged else [p, note]
    for _, family in out[out["ref_p"].notna()].groupby(["series", "technique", "metric"], sort=False):
        out.loc[family.index, "ref_p_holm"] = holm(list(family["ref_p"]))
        out.loc[family.index, "ref_tests"] = len(family)
    return out.assign(ref_significant=out["ref_p_holm"] < ALPHA)[[*COLUMNS, *VERSUS]]


def analyse(folders, current=None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The folders' rows, their finished rows, flags and statistics: what the report, summary and API read."""
    frame = load(folders, current)
    ok = finished(frame[frame["table"].notna()])
    flags = sanity_flags(ok)
    return frame, ok, flags, statistics(ok, flags, load_cost(Path(f) for f in folders))  # named as load() names them
