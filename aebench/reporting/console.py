"""The closing summary of ``aebench run``, from the report's statistics frame: per table its setting, mean ± sd per
technique, the differences from the baseline (Holm-adjusted), the flags, and the cells that did not finish."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from aebench.reporting import words
from aebench.reporting.rows import SETTING, axes_of, setting_words
from aebench.reporting.stats import METRICS, analyse

TESTED = ("mse", "accuracy", "train_seconds")  # the differences the summary lists


@dataclass
class Summary:
    """One row per (table, technique): the setting columns, then mean ± sd per metric, seeds and flags; the text."""

    table: pd.DataFrame
    text: str


def run_summary(folder: Path, current: Mapping[tuple, str]) -> Summary:
    frame, ok, flags, stats = analyse([folder], current)
    stats = stats[stats["metric"].isin(METRICS)]  # the cost record (measured after the summary) is the report's
    keys = [*SETTING, *axes_of(ok)]  # a sweep's point: one column per axis
    tables, blocks = [], []
    for table, mine in stats.groupby("table", sort=False):
        first, mine_flags = ok[ok["table"] == table].iloc[0], flags[flags["table"] == table]
        wide = mine.assign(cell=[words.mean_sd(m, a, s) for m, a, s in zip(mine["metric"], mine["mean"], mine["sd"])])
        wide = wide.pivot(index="technique", columns="metric", values="cell")
        wide = wide.loc[list(dict.fromkeys(mine["technique"])), list(dict.fromkeys(mine["metric"]))].reset_index()
        wide["seeds"] = mine.groupby("technique", sort=False)["n"].max().to_numpy()
        wide["flags"] = ["; ".join(mine_flags.loc[mine_flags["technique"] == t, "label"]) for t in wide["technique"]]
        tables.append(pd.concat([pd.DataFrame([first[keys].to_dict()] * len(wide)), wide], axis=1))
        tested = mine[(mine["note"] != "the baseline") & (mine["pairs"] > 0) & mine["metric"].isin(TESTED)]
        lines = [f"{table}: {setting_words(first.to_dict(), keys[2:])}", wide.to_string(index=False)]
        lines += [f"  {r['technique']:<22} {r['metric']:<14} Δ {r['diff']:+.6g}  {words.test_words(r)}"
                  for r in tested.to_dict("records")]  # fmt: skip
        lines += [f"flagged ({label}): {why}" for label, why in zip(mine_flags["label"], mine_flags["reason"])]
        blocks.append("\n".join(lines))
    bad = frame[frame["status"] != "ok"]
    bad = bad.assign(point=[setting_words(row, axes_of(bad)) for row in bad.to_dict("records")])
    listed = [f"  {d}{f' ({p})' * bool(p)} / {t} / seed{'s' * (len(g) > 1)} {', '.join(map(str, sorted(g['seed'])))}: "
              f"{s}: {r}" for (d, p, t, s, r), g in bad.groupby(["dataset", "point", "technique", "status", "reason"],
                                                                sort=False)]  # fmt: skip
    if listed:
        blocks.append("\n".join(["not in the tables (failed or skipped):", *listed]))
    if not tables:
        blocks.insert(0, "no successful cells")
    return Summary(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(), "\n\n".join(blocks))
