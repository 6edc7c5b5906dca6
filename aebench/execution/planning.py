"""The plan of a run: which of an experiment's cells are already done in a results folder (the one done/todo rule,
used by ``aebench run`` and ``--dry-run`` alike), and which todo cells the run will record skipped, and why."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from aebench.config import CLASSIFIER_BODIES, CellConfig
from aebench.errors import UserError
from aebench.experiment import ExperimentConfig
from aebench.hub.network import timm_weights_missing
from aebench.results.schema import DONE_STATUSES
from aebench.results.store import cell_key, finished_keys, read_rows
from aebench.techniques import get_technique


@dataclass(frozen=True)
class PlannedCell:
    """A cell of the experiment and whether ``results.jsonl`` already holds it finished (``ok``, or ``skipped``
    unless skipped cells are retried, at its current config hash); a ``failed`` cell is todo again."""

    cell: CellConfig
    done: bool


def plan(config: ExperimentConfig, out: Path, retry_skipped: bool = False) -> list[PlannedCell]:
    """Every cell of ``config`` in order, done or todo in ``out``; a UserError when ``out`` holds another
    experiment's rows (one experiment per results folder: its rows, summary and report belong together).
    ``retry_skipped``: a cell recorded ``skipped`` (weights were offline, say) is todo again."""
    rows = read_rows(out)
    others = sorted({r["experiment"] for r in rows} - {config.name})
    if others:
        raise UserError(f"{out} holds results of experiment '{others[0]}', not '{config.name}': pass another --out")
    done = finished_keys(rows, ("ok",) if retry_skipped else DONE_STATUSES)
    return [PlannedCell(c, cell_key({**c.to_dict(), "config_hash": c.config_hash}) in done) for c in config.cells()]


@cache
def weights_missing(name: str) -> str | None:
    return timm_weights_missing(name)


def expected_skip(cell: CellConfig) -> str | None:
    """Why the run would record this cell skipped (pretrained weights neither in a local file nor to be had from
    the hub now), or None; nothing is downloaded."""
    info = get_technique(cell.technique)
    body = info.weights_body(cell.params)
    local = getattr(cell.params, info.weights.param, None) if info.weights else None
    if body is not None and not local and (why := weights_missing(body[0])):
        return f"{why} (set overrides.{cell.technique}.{info.weights.param}: a local state_dict)"
    body_name = CLASSIFIER_BODIES.get(cell.classifier.model)
    if body_name and not cell.classifier.weights and (why := weights_missing(body_name)):
        return f"{why} (set classifier.weights: a local state_dict)"
    return None
