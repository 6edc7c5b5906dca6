"""Reading a cell's artefacts for the report: a damaged or foreign file is skipped with a warning, never fatal."""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from aebench.errors import UserError
from aebench.files import read_bytes, read_npz

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


def read_arrays(path: Path, shapes: dict[str, int]) -> dict[str, np.ndarray] | None:
    """The named numeric arrays of an ``.npz`` (``shapes`` maps each name to its number of dimensions); None when
    the file is absent, a link, damaged, oversized, holds object arrays (never unpickled) or lacks a name."""
    try:
        arrays = read_npz(path, list(shapes))
    except FileNotFoundError:
        return None
    except UserError as exc:  # a link, a non-regular or an oversized file
        skipped(path, reason(path, exc))
        return None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
        skipped(path, f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})")
        return None
    for name, ndim in shapes.items():
        if arrays[name].dtype.kind not in "biuf" or arrays[name].ndim != ndim:
            skipped(path, f"'{name}' is not a {ndim}-D numeric array")
            return None
    return arrays
