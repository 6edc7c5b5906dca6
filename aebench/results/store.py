"""The append-only results store (``results.jsonl``): locked appends, tolerant reads, resume keys."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from aebench.errors import UserError
from aebench.results.schema import CELL_KEYS, DONE_STATUSES, RESULTS_FILE, ROW_FIELDS, SAFE_HASH, SAFE_NAME

log = logging.getLogger(__name__)


def strict(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (strict JSON has no NaN or Infinity)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def row_line(row: dict[str, Any]) -> bytes:
    """One strict-JSON line (non-finite numbers written as null)."""
    return (json.dumps({k: strict(v) for k, v in row.items()}, default=str, allow_nan=False) + "\n").encode()


def append_row(folder: Path, row: dict[str, Any]) -> None:
    """Append one row as a single locked, fsynced write (a killed process never leaves half a line).

    A short write (disk full) is undone by truncating back, and raised as ``OSError``: the file keeps only
    whole rows.
    """
    missing = [f for f in ROW_FIELDS if f not in row]
    if missing:
        raise ValueError(f"results row lacks {missing}")
    line = row_line(row)
    fd = os.open(folder / RESULTS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # the file ends in a damaged line: never glue this row onto it
        try:
            written = os.write(fd, line)
            if written != len(line):
                raise OSError(errno.ENOSPC, f"short write ({written} of {len(line)} bytes)", str(folder / RESULTS_FILE))
            os.fsync(fd)
        except OSError:
            os.ftruncate(fd, size)  # no partial row left behind
            raise
    finally:
        os.close(fd)


def valid_row(row: Any) -> bool:
    """A JSON object whose cell keys are safe names (they become folder names), an integer seed and a hex hash."""
    if not isinstance(row, dict):
        return False
    names = [row.get(k) for k in ("experiment", "dataset", "technique")]
    seed, digest = row.get("seed"), row.get("config_hash")
    return (
        all(isinstance(n, str) and SAFE_NAME.fullmatch(n) for n in names)
        and isinstance(seed, int)
        and not isinstance(seed, bool)
        and seed >= 0
        and isinstance(digest, str)
        and SAFE_HASH.fullmatch(digest) is not None
    )


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """All valid rows of a results folder; an unreadable or invalid line (a crash, a hand edit) is skipped with
    a warning."""
    path = folder / RESULTS_FILE
    if not path.is_file():
        return []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    rows = []
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line.decode("utf-8"), parse_constant=reject_constant)
        except (UnicodeDecodeError, ValueError):  # JSONDecodeError is a ValueError
            row = None
        if valid_row(row):
            rows.append(row)
        else:
            log.warning("%s:%d: unreadable or invalid row skipped", path, number)
    return rows


def reject_constant(name: str) -> None:
    """Strict JSON: NaN, Infinity and -Infinity are not numbers."""
    raise ValueError(f"non-standard JSON constant {name}")


def cell_key(row: dict[str, Any]) -> tuple:
    """Identity of a finished cell for resume: the cell and its resolved-config hash."""
    return (*(row[k] for k in CELL_KEYS), row["config_hash"])


def finished_keys(rows: Iterable[dict[str, Any]]) -> set[tuple]:
    """Cells that need no rerun (failed ones are retried)."""
    return {cell_key(r) for r in rows if r.get("status") in DONE_STATUSES}


def cell_of(row: dict[str, Any]) -> tuple:
    """A row's (experiment, dataset, technique, seed)."""
    return tuple(row[k] for k in CELL_KEYS)


def current_rows(
    rows: list[dict[str, Any]], current: dict[tuple, str] | None = None, key: Callable[[dict], tuple] = cell_of
) -> list[dict[str, Any]]:
    """One row per cell (or per ``key``): of its current config hash (``current`` maps keys to it; by default the
    hash of its latest row), its latest ``ok`` or ``skipped`` row, else its latest row."""
    by_cell: dict[tuple, list[dict[str, Any]]] = {}
    for row in rows:
        by_cell.setdefault(key(row), []).append(row)
    chosen = []
    for key, cell_rows in by_cell.items():
        digest = (current or {}).get(key, cell_rows[-1]["config_hash"])
        mine = [r for r in cell_rows if r["config_hash"] == digest]
        if mine:
            done = [r for r in mine if r.get("status") in DONE_STATUSES]
            chosen.append((done or mine)[-1])
    return chosen


def load_results(folders: Iterable[Path], current: dict[tuple, str] | None = None) -> pd.DataFrame:
    """Rows of all folders, one per (experiment, dataset, technique, seed) as chosen by ``current_rows``."""
    rows = current_rows([row for folder in folders for row in read_rows(Path(folder))], current)
    return pd.DataFrame(rows, columns=list(dict.fromkeys([*ROW_FIELDS, *(k for r in rows for k in r)])))
