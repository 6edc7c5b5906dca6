"""What a run leaves besides its rows: the summary (``summary.csv``, ``summary.md``) by the report's rules, one
table per comparison group with its setting, the paired tests against the baseline (Holm-adjusted), the sanity
flags, and the cells that did not finish, listed once; written by the runner for the command line and the API."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aebench.experiment import ExperimentConfig
from aebench.files import write_text

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RunSummary:
    """The experiment's rows (one per cell, of its current config; a column per sweep axis), the table of every
    comparison group (setting columns first) and the printed summary."""

    rows: pd.DataFrame
    table: pd.DataFrame
    summary: str

    def markdown(self) -> str:
        """``summary.md``: the table, then the summary as printed."""
        return self.table.to_markdown(index=False) + f"\n\n```\n{self.summary}\n```\n"

    def text(self) -> str:
        """What ``aebench run`` prints at the end."""
        return self.summary


def summarize(config: ExperimentConfig, out: Path) -> RunSummary:
    """The summary of ``config``'s rows in ``out`` (each cell's row of its current config hash)."""
    from aebench.reporting.console import run_summary
    from aebench.results.store import cell_of, load_results

    current = {cell_of(c.to_dict()): c.config_hash for c in config.cells()}
    frame = load_results([out], current)
    rows = with_axis_columns(frame[frame["experiment"] == config.name].reset_index(drop=True), config)
    summary = run_summary(out, current)
    return RunSummary(rows, summary.table, summary.text)


def with_axis_columns(rows: pd.DataFrame, config: ExperimentConfig) -> pd.DataFrame:
    """``rows`` with a column per sweep axis, named by its key (``model.latent``), holding each row's value on it
    (None where an axis sets another technique's option): ``rows.groupby(["model.latent", "technique"])``."""
    points = [axes if isinstance(axes, dict) else {} for axes in rows.get("axes", [None] * len(rows))]
    return rows.assign(**{axis.key: [point.get(axis.key) for point in points] for axis in config.sweep})


def write_summary(summary: RunSummary, out: Path) -> None:
    """``summary.csv`` (the table) and ``summary.md`` (the table and the summary); nothing without a table."""
    if summary.table.empty:
        return
    write_text(out / "summary.csv", summary.table.to_csv(index=False))
    write_text(out / "summary.md", summary.markdown())
