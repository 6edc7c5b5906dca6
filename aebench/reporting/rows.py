"""The rows a report shows: every results folder's rows with their cell folder, setting and technique facts,
one row per cell and setting (a folder that ran one technique at two settings shows both, in two tables), and per
technique and table the seeds of one recipe (a rerun with other options never averages with the others).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from aebench.reporting.cellfiles import read_history
from aebench.results.schema import ROW_FIELDS, cell_folder
from aebench.results.settings import cell_config, setting_of
from aebench.results.store import cell_of, current_rows, read_rows

FACT_FIELDS = ("role", "own_loss", "needs_weights")  # what a technique says about itself (its registry entry)
ROLES = ("baseline", "compared", "reference")


@dataclass
class Loaded:
    """The rows to report and what the reader should know about how they were chosen and completed."""

    frame: pd.DataFrame
    filled: dict[str, int] = field(default_factory=dict)  # fact -> rows that took it from the registry
    superseded: list[dict[str, Any]] = field(
        default_factory=list
    )  # rows not shown; "left_out" says why: "config" or "recipe"


def fill_facts(row: dict[str, Any], facts: Mapping[str, Mapping[str, Any]], filled: dict[str, int]) -> None:
    """Complete a row written before technique facts were recorded from ``facts`` (the registry), counting it. A
    fact the row records, null included (a feature loss on a trained feature net needs no weights), stays."""
    known = facts.get(row["technique"], {})
    for name in FACT_FIELDS:
        if name not in row and known.get(name) is not None:
            row[name] = known[name]
            filled[name] = filled.get(name, 0) + 1
    if row.get("role") not in ROLES:
        row["role"] = "unknown"


def fit_only(row: dict[str, Any], folder: Path) -> bool:
    """Whether the cell took no training epoch (a closed-form fit): its images/s is then no training rate."""
    trained = row.get("epochs_trained")
    if isinstance(trained, (int, float)):
        return trained == 0
    return row.get("status") == "ok" and not read_history(folder / "history.json")


def training_rates(ok: pd.DataFrame) -> pd.DataFrame:
    """``ok`` with the images/s of fit-only cells left out: a fit's rate is no training throughput."""
    return ok.assign(images_per_second=ok["images_per_second"].where(~ok["fit_only"].astype(bool)))


def latest_recipe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of one technique in one table, all of them unless they record two or more recipes
    (``recipe_hash``); then only those of the recipe of its latest ``ok`` row (else of its latest row), latest by
    ``finished_at``, then by the order read. A row recording no recipe (written before it was recorded) mixes
    with any one recipe, as before; beside two it cannot be placed and is left out too."""
    recorded = [r for r in rows if r.get("recipe_hash") is not None]
    if len({r["recipe_hash"] for r in recorded}) < 2:
        return rows
    order = {id(r): i for i, r in enumerate(recorded)}
    ok = [r for r in recorded if r.get("status") == "ok"]
    latest = max(ok or recorded, key=lambda r: (str(r.get("finished_at") or ""), order[id(r)]))
    return [r for r in rows if r.get("recipe_hash") == latest["recipe_hash"]]


def one_recipe(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` less, per technique and table (experiment, dataset, setting), the rows of recipes other than its
    latest one (``latest_recipe``): seeds of two recipes are never averaged as one technique."""
    by_technique: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["experiment"], row["dataset"], row["technique"], row["setting_key"])
        by_technique.setdefault(key, []).append(row)
    kept = {id(r) for same in by_technique.values() for r in latest_recipe(same)}
    return [r for r in rows if id(r) in kept]


def left_out(rows: list[dict[str, Any]], shown: list[dict[str, Any]], why: str) -> list[dict[str, Any]]:
    """The finished rows of ``rows`` not in ``shown``, each marked with why (``config``: an earlier config of its cell; ``recipe``: another recipe)."""
    kept = {id(r) for r in shown}
    return [{**r, "left_out": why} for r in rows if id(r) not in kept and r.get("status") == "ok"]


def load(
    folders: list[Path],
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    current: Mapping[tuple, str] | None = None,
) -> Loaded:
    """All rows of ``folders``: per cell and config hash its latest finished row (else its latest), then per cell
    and setting the row of the latest config, then per technique and table the rows of its latest recipe (the
    finished rows left out are ``superseded``). ``current`` (cell key -> config hash) keeps only those cells at
    those configs: a run's own cells."""
    filled: dict[str, int] = {}
    rows = []
    for folder in map(Path, folders):
        for row in read_rows(folder):
            if current is not None and current.get(cell_of(row)) != row["config_hash"]:
                continue
            cell = cell_folder(folder, row["dataset"], row["technique"], row["seed"], row["config_hash"])
            setting = setting_of(row, cell_config(cell))
            fill_facts(row, facts or {}, filled)
            rows.append(
                {**row, "setting": setting, "setting_key": repr(setting), "cell_dir": cell, "results_folder": folder}
            )
    per_config = current_rows(rows, key=lambda r: (*cell_of(r), r["config_hash"]))
    latest = current_rows(per_config, key=lambda r: (*cell_of(r), r["setting_key"]))
    chosen = one_recipe(latest)
    for row in chosen:
        row["fit_only"] = fit_only(row, row["cell_dir"])
    columns = list(dict.fromkeys([*ROW_FIELDS, *(k for r in chosen for k in r)]))
    superseded = left_out(per_config, latest, "config") + left_out(latest, chosen, "recipe")
    return Loaded(pd.DataFrame(chosen, columns=columns), filled, superseded)
