"""Comparison groups: the finished rows of one experiment, dataset and setting. Every table, test, figure and
"best" claim stays inside one group; nothing is compared across groups."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aebench.results.settings import Setting
from aebench.results.summary import finished


@dataclass(frozen=True)
class Group:
    """The rows of one (experiment, dataset, setting): one results table."""

    experiment: str
    dataset: str
    setting: Setting
    label: str
    stem: str

    @property
    def corruption(self) -> str:
        return self.setting.corruption

    def tag(self, numbers: pd.DataFrame) -> None:
        """Prefix a table's numbers with this group's experiment, dataset and setting columns (in place)."""
        for name, value in reversed(
            [
                ("experiment", self.experiment),
                ("dataset", self.dataset),
                ("epochs", self.setting.epochs),
                ("budget_seconds", self.setting.budget_seconds),
                ("n_train", self.setting.n_train),
                ("n_test", self.setting.n_test),
            ]
        ):
            numbers.insert(0, name, value)
        for name in ("epochs", "n_train", "n_test"):
            numbers[name] = numbers[name].astype("Int64")


def slug(text: str) -> str:
    return re.sub(r"[^0-9A-Za-z._]+", "-", text).strip("-")[:60]


def groups(frame: pd.DataFrame) -> list[Group]:
    """The groups of the finished rows in first-seen order, labelled by the dataset, with the experiment where the
    dataset appears in several, and what differs where one experiment ran the dataset at several settings."""
    ok = finished(frame)
    keys = list(dict.fromkeys(zip(ok["experiment"], ok["dataset"], ok["setting"])))
    out, stems = [], set()
    for experiment, dataset, setting in keys:
        siblings = [s for e, d, s in keys if (e, d) == (experiment, dataset) and s != setting]
        differs = setting.differences(siblings) if siblings else ""
        experiments = {e for e, d, _ in keys if d == dataset}
        tags = [experiment] * (len(experiments) > 1) + [differs] * bool(differs)
        label = f"{dataset} ({', '.join(tags)})" if tags else dataset
        stem = slug(f"{experiment}_{dataset}" + (f"_{differs}" if differs else ""))
        while stem in stems:
            stem += "-"
        stems.add(stem)
        out.append(Group(experiment, dataset, setting, label, stem))
    return out


def rows_of(frame: pd.DataFrame, group: Group) -> pd.DataFrame:
    """All rows of the group's experiment, dataset and setting: finished rows of exactly that setting, and rows that
    did not finish whose setting, as far as they record it, is that one (a skipped cell names no image counts)."""
    exact = frame["setting_key"] == repr(group.setting)
    unfinished = (frame["status"] != "ok") & frame["setting"].map(group.setting.admits)
    return frame[(frame["experiment"] == group.experiment) & (frame["dataset"] == group.dataset) & (exact | unfinished)]


def earlier_rows(superseded: list[dict[str, Any]], group: Group) -> list[dict[str, Any]]:
    """The superseded rows (earlier configs of a cell at the group's setting) that belong to the group."""
    key = (group.experiment, group.dataset, repr(group.setting))
    return [r for r in superseded if (r["experiment"], r["dataset"], r["setting_key"]) == key]
