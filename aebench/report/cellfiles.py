"""Reading a cell's artefacts for the report: a damaged or foreign file is skipped with a warning, never fatal."""

from __future__ import annotations

import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aebench.report.groups import Group, rows_of
from aebench.results.settings import cell_config
from aebench.results.summary import finished

log = logging.getLogger(__name__)


def skipped(path: Path, why: str) -> None:
    log.warning("%s: %s; skipped in the report", path, why)


def read_history(path: Path) -> list[dict[str, Any]]:
    """The per-epoch records of ``history.json`` (a list of objects with numeric ``epoch`` and ``test_loss``)."""
    if not path.is_file():
        return []
    try:
        records = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        skipped(path, f"unreadable ({type(exc).__name__})")
        return []
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("epoch"), int) and isinstance(r.get("test_loss"), (int, float))
        for r in records
    ):
        skipped(path, "not a list of epoch records")
        return []
    return records


def read_arrays(
    path: Path, shapes: dict[str, int], optional: bool = False, text: bool = False
) -> dict[str, np.ndarray] | None:
    """The named numeric arrays (``text``: string arrays) of an ``.npz``; ``shapes`` maps each name to its number
    of dimensions. None when the file is absent, damaged, holds object arrays (never unpickled) or lacks a name
    (with no warning for ``optional`` arrays, which older files lack)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            if optional and not set(shapes) <= set(archive.files):
                return None
            arrays = {name: archive[name] for name in shapes}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        skipped(path, f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        return None
    for name, ndim in shapes.items():
        if arrays[name].dtype.kind not in ("U" if text else "biuf") or arrays[name].ndim != ndim:
            skipped(path, f"'{name}' is not a {ndim}-D {'text' if text else 'numeric'} array")
            return None
    return arrays


@dataclass(frozen=True)
class Cell:
    """One finished cell of a group, its folder of artefacts and the row facts its figures need."""

    group: Group
    technique: str
    seed: int
    folder: Path
    train_seconds: float
    mse: float
    own_loss: bool | None  # None: not recorded
    image_size: int | None
    loss: str  # the training loss the config names ("mse", "l1", ...; "unknown" without a config)


def group_cells(frame: pd.DataFrame, groups: list[Group]) -> list[Cell]:
    """The finished cells whose folder exists, group by group, in row order."""
    cells = []
    for group in groups:
        for row in finished(rows_of(frame, group)).to_dict("records"):
            folder = Path(row["cell_dir"])
            if folder.is_dir():
                own = row.get("own_loss")
                cells.append(
                    Cell(
                        group,
                        row["technique"],
                        int(row["seed"]),
                        folder,
                        float(row["train_seconds"]),
                        float(row["mse"]),
                        None if own is None or own != own else bool(own),
                        group.setting.image_size,
                        str(cell_config(folder).get("train", {}).get("loss", "unknown")),
                    )
                )
    return cells
