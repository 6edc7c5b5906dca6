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

from aebench.errors import UserError
from aebench.files import UnsafePath, inside, read_bytes, read_npz
from aebench.reporting.groups import Group, rows_of
from aebench.results.settings import cell_config
from aebench.results.summary import finished

HISTORY_LIMIT = 16 * 2**20  # bytes of a history.json (aebench writes about 200 per epoch)
log = logging.getLogger(__name__)


def skipped(path: Path, why: str) -> None:
    log.warning("%s: %s; skipped in the report", path, why)


def reason(path: Path, exc: Exception) -> str:
    """Why a file could not be read: aebench's own one line (a link, too large, ...) or the error's type."""
    return str(exc).removeprefix(f"{path}: ") if isinstance(exc, UserError) else f"unreadable ({type(exc).__name__})"


def read_history(path: Path) -> list[dict[str, Any]]:
    """The per-epoch records of ``history.json`` (a list of objects with numeric ``epoch`` and ``test_loss``)."""
    try:
        records = json.loads(read_bytes(path, HISTORY_LIMIT).decode("utf-8"))
    except FileNotFoundError:
        return []
    except (UserError, OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        skipped(path, reason(path, exc))
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
    of dimensions. None when the file is absent, a link, damaged, oversized, holds object arrays (never
    unpickled) or lacks a name (with no warning for ``optional`` arrays, which older files lack)."""
    try:
        arrays = read_npz(path, list(shapes))
    except FileNotFoundError:
        return None
    except UserError as exc:  # a link, a non-regular or an oversized file
        skipped(path, reason(path, exc))
        return None
    except KeyError:
        if not optional:
            skipped(path, f"lacks {', '.join(shapes)}")
        return None
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
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
    """The finished cells whose folder exists, group by group, in row order (a folder that is a link, or lies
    behind one, is left out with a warning: its files are never read)."""
    cells = []
    for group in groups:
        for row in finished(rows_of(frame, group)).to_dict("records"):
            folder = Path(row["cell_dir"])
            try:
                inside(Path(row["results_folder"]), folder)
            except UnsafePath as exc:
                skipped(folder, reason(folder, exc))
                continue
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
