"""The append-only results store (``results.jsonl``): locked appends, tolerant reads, resume keys."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from aebench.results.schema import CELL_KEYS, DONE_STATUSES, RESULTS_FILE, ROW_FIELDS

log = logging.getLogger(__name__)


def append_row(folder: Path, row: dict[str, Any]) -> None:
    """Append one row as a single locked, fsynced write (a killed process never leaves half a line)."""
    missing = [f for f in ROW_FIELDS if f not in row]
    if missing:
        raise ValueError(f"results row lacks {missing}")
    line = (json.dumps(row, default=str) + "\n").encode()
    fd = os.open(folder / RESULTS_FILE, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line  # the file ends in a damaged line: never glue this row onto it
        os.write(fd, line)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """All rows of a results folder; an unreadable line (e.g. from a crash) is skipped with a warning."""
    path = folder / RESULTS_FILE
    if not path.is_file():
        return []
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s:%d: unreadable row skipped", path, number)
    return rows


def cell_key(row: dict[str, Any]) -> tuple:
    """Identity of a finished cell for resume: the cell and its resolved-config hash."""
    return (*(row[k] for k in CELL_KEYS), row["config_hash"])


def finished_keys(rows: Iterable[dict[str, Any]]) -> set[tuple]:
    """Cells that need no rerun (failed ones are retried)."""
    return {cell_key(r) for r in rows if r.get("status") in DONE_STATUSES}


def load_results(folders: Iterable[Path]) -> pd.DataFrame:
    """Rows of all folders, keeping the latest row per (experiment, dataset, technique, seed)."""
    rows = [row for folder in folders for row in read_rows(Path(folder))]
    frame = pd.DataFrame(rows, columns=list(dict.fromkeys([*ROW_FIELDS, *(k for r in rows for k in r)])))
    if frame.empty:
        return frame
    return frame.drop_duplicates(subset=CELL_KEYS, keep="last").reset_index(drop=True)
