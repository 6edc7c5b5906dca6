"""The closing summary of ``aebench run``, by the report's rules: one table per comparison group (its setting
stated), the paired tests against the baseline (Holm-adjusted, flagged techniques untested), the flags with
their reasons, and every cell that did not finish, listed once with its reason."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from aebench.reporting.cellfiles import group_cells
from aebench.reporting.conditions import time_caveat
from aebench.reporting.groups import Group, groups, rows_of
from aebench.reporting.images import first_seed_cells, samples_of
from aebench.reporting.rows import load, training_rates
from aebench.reporting.sanity import Flags, sanity_flags
from aebench.reporting.statistics import ALPHA, baseline_of, difference_lines
from aebench.results.summary import finished, summary_table


@dataclass
class Summary:
    """The summary table of every group (setting columns first) and the text ``aebench run`` prints."""

    table: pd.DataFrame
    text: str


def group_table(group: Group, ok: pd.DataFrame, flags: Flags) -> pd.DataFrame:
    """mean ± sd per technique of one group, with the group's setting and each technique's flags."""
    table = summary_table(training_rates(ok)).drop(columns=["dataset"])
    table["flags"] = ["; ".join(f.label for f in flags.of(t)) for t in table["technique"]]
    for key, value in reversed(group.setting.sweep):  # the sweep point, beside the other setting columns
        table.insert(0, key, value)
    group.tag(table)
    return table


def group_block(group: Group, rows: pd.DataFrame, flags: Flags, table: pd.DataFrame) -> str:
    """The printed block of one group: its setting, its table, its tests and its flags."""
    shown = table.drop(columns=["experiment", "dataset", "epochs", "budget_seconds", "n_train", "n_test"])
    lines = [f"{group.label}: {group.setting.line()}", shown.to_string(index=False)]
    tests = difference_lines(rows, flags=flags)
    if tests:
        baseline = baseline_of(finished(rows))
        lines += [f"each technique minus {baseline} on the same seeds (real = Holm-adjusted p < {ALPHA}):", *tests]
    lines += [f"flagged ({f.label}): {f.reason}" for f in flags.flags]
    lines += [f"train times are {caveat}" for caveat in (time_caveat(finished(rows)),) if caveat]
    return "\n".join(lines)


def unfinished(frame: pd.DataFrame) -> list[str]:
    """Each technique's failed or skipped cells, once per sweep point and reason, with their seeds."""
    bad = frame[frame["status"].isin(["failed", "skipped"])]
    bad = bad.assign(point=[f" ({setting.point()})" if setting.sweep else "" for setting in bad["setting"]])
    keys = ["dataset", "point", "technique", "status", "reason"]
    return [
        f"  {dataset}{point} / {technique} / seed{'s' * (len(seeds) > 1)} {', '.join(map(str, sorted(seeds)))}: "
        f"{status}: {reason}"
        for (dataset, point, technique, status, reason), seeds in bad.groupby(keys, sort=False)["seed"]
    ]


def run_summary(
    folder: Path, current: Mapping[tuple, str], facts: Mapping[str, Mapping[str, Any]] | None = None
) -> Summary:
    """The summary of the rows of ``current`` (cell key -> config hash: the run's cells) in ``folder``."""
    frame = load([folder], facts, current).frame
    found = groups(frame)
    cells = group_cells(frame, found)
    tables, blocks = [], []
    for group in found:
        rows = rows_of(frame, group)
        ok = finished(rows)
        flags = sanity_flags(ok, samples_of(first_seed_cells(cells, group)))
        table = group_table(group, ok, flags)
        tables.append(table)
        blocks.append(group_block(group, rows, flags, table))
    problems = unfinished(frame)
    if problems:
        blocks.append("\n".join(["not in the tables (failed or skipped):", *problems]))
    if not tables:
        blocks.insert(0, "no successful cells")
    return Summary(pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(), "\n\n".join(blocks))
