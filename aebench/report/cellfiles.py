"""Reading a cell's artefacts for the report: a damaged or foreign file is skipped with a warning, never fatal."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

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


def read_arrays(path: Path, shapes: dict[str, int]) -> dict[str, np.ndarray] | None:
    """The named numeric arrays of an ``.npz`` (``shapes`` maps each name to its number of dimensions); None when
    the file is absent, damaged, holds object arrays (never unpickled) or lacks a name."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in shapes}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        skipped(path, f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        return None
    for name, ndim in shapes.items():
        if arrays[name].dtype.kind not in "biuf" or arrays[name].ndim != ndim:
            skipped(path, f"'{name}' is not a {ndim}-D numeric array")
            return None
    return arrays
