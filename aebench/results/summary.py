"""Aggregation over seeds: mean, sd and count per (dataset, technique), and the printable summary table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aebench.results.schema import METRICS, QUALITY


def aggregate(frame: pd.DataFrame, metrics: list[str] | None = None) -> pd.DataFrame:
    """Mean, sd and seed count per (dataset, technique) over the seeds that finished (``ok`` rows with every
    quality metric a number), techniques in first-seen order."""
    ok = finished(frame)
    if ok.empty:
        return pd.DataFrame()
    metrics = metrics or [m.name for m in METRICS]
    grouped = ok.groupby(["dataset", "technique"], sort=False)[metrics].agg(["mean", "std"])
    grouped[("seeds", "n")] = ok.groupby(["dataset", "technique"], sort=False).size()
    return grouped


def finished(frame: pd.DataFrame) -> pd.DataFrame:
    """The ``ok`` rows whose quality metrics are all finite numbers (older files may hold NaN or null)."""
    ok = frame[frame["status"] == "ok"]
    quality = ok[list(QUALITY)].apply(pd.to_numeric, errors="coerce")
    return ok[np.isfinite(quality.to_numpy(dtype=float)).all(axis=1)]


def format_mean_sd(mean: float, sd: float, digits: int) -> str:
    """``mean ± sd`` (sd omitted for a single seed)."""
    if pd.isna(mean):
        return "–"
    if pd.isna(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A printable table: one row per (dataset, technique), ``mean ± sd`` strings and the seed count."""
    stats = aggregate(frame)
    if stats.empty:
        return pd.DataFrame()
    table = pd.DataFrame(index=stats.index)
    for spec in METRICS:
        means, sds = stats[(spec.name, "mean")], stats[(spec.name, "std")]
        table[spec.name] = [format_mean_sd(m, s, spec.digits) for m, s in zip(means, sds)]
    table["seeds"] = stats[("seeds", "n")].astype(int)
    return table.reset_index()
