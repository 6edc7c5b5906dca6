"""The plan of a run: which of an experiment's cells are already done in a results folder (the one done/todo rule,
used by ``aebench run`` and ``--dry-run`` alike)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aebench.config import CellConfig
from aebench.errors import UserError
from aebench.experiment import ExperimentConfig
from aebench.results.store import cell_key, finished_keys, read_rows


@dataclass(frozen=True)
class PlannedCell:
    """A cell of the experiment and whether ``results.jsonl`` already holds it finished (``ok`` or ``skipped`` at
    its current config hash); a ``failed`` cell is todo again."""

    cell: CellConfig
    done: bool


def plan(config: ExperimentConfig, out: Path) -> list[PlannedCell]:
    """Every cell of ``config`` in order, done or todo in ``out``; a UserError when ``out`` holds another
    experiment's rows (one experiment per results folder: its rows, summary and report belong together)."""
    rows = read_rows(out)
    others = sorted({r["experiment"] for r in rows} - {config.name})
    if others:
        raise UserError(f"{out} holds results of experiment '{others[0]}', not '{config.name}': pass another --out")
    done = finished_keys(rows)
    return [PlannedCell(c, cell_key({**c.to_dict(), "config_hash": c.config_hash}) in done) for c in config.cells()]
