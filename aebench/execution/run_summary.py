"""What a run leaves besides its rows: the summary over seeds (``summary.csv``, ``summary.md``) and the paired
tests of each technique against the baseline, written by the runner for the command line and the Python API alike."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from aebench.experiment import ExperimentConfig
from aebench.files import write_text
from aebench.techniques import TECHNIQUES

if TYPE_CHECKING:
    import pandas as pd


@dataclass
class RunSummary:
    """The experiment's rows (one per cell, of its current config), their table (mean ± sd over seeds) and the
    paired tests against the baseline, one paragraph per dataset."""

    rows: pd.DataFrame
    table: pd.DataFrame
    differences: list[str]

    def markdown(self) -> str:
        """``summary.md``: the table, then the paired tests."""
        tests = "".join(f"\n```\n{paragraph}\n```\n" for paragraph in self.differences)
        return self.table.to_markdown(index=False) + "\n" + tests

    def text(self) -> str:
        """What ``aebench run`` prints at the end."""
        if self.table.empty:
            return "no successful cells; see the reasons in results.jsonl"
        return "\n\n".join([self.table.to_string(index=False), *self.differences])


def summarize(config: ExperimentConfig, out: Path) -> RunSummary:
    """The summary of ``config``'s rows in ``out`` (each cell's row of its current config hash)."""
    from aebench.report.statistics import ALPHA, difference_lines
    from aebench.results.store import load_results
    from aebench.results.summary import summary_table

    current = {(c.experiment, c.dataset, c.technique, c.seed): c.config_hash for c in config.cells()}
    frame = load_results([out], current)
    rows = frame[frame["experiment"] == config.name].reset_index(drop=True)
    baseline = ", ".join(name for name, info in TECHNIQUES.items() if info.role == "baseline")
    differences = []
    for dataset, group in rows.groupby("dataset", sort=False):
        lines = difference_lines(group)
        if lines:
            head = f"{dataset}: each technique minus {baseline} on the same seeds (real = paired t-test p < {ALPHA}):"
            differences.append("\n".join([head, *lines]))
    return RunSummary(rows, summary_table(rows), differences)


def write_summary(summary: RunSummary, out: Path) -> None:
    """``summary.csv`` (the table) and ``summary.md`` (the table and the paired tests); nothing without a table."""
    if summary.table.empty:
        return
    write_text(out / "summary.csv", summary.table.to_csv(index=False))
    write_text(out / "summary.md", summary.markdown())
