"""The append-only results store (``results.jsonl``): locked appends, tolerant reads, resume keys."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import math
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from aebench.config import point_key
from aebench.errors import UserError
from aebench.files import open_binary, open_writable
from aebench.results.schema import (
    AXES_FIELD,
    CELL_KEYS,
    DONE_STATUSES,
    FLAG_FIELDS,
    NUMBER_FIELDS,
    RESULTS_FILE,
    ROW_FIELDS,
    SAFE_HASH,
    SAFE_NAME,
    STATUSES,
    TEXT_FIELDS,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
MAX_LINE = 64 * 1024  # bytes of one row (aebench writes about 1.5 KB); a longer line is skipped unread
MAX_RESULTS = 2**30  # bytes of a results.jsonl (about 700,000 rows)
INT64 = 2**63


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
    fd = open_writable(folder / RESULTS_FILE, os.O_APPEND)  # never through a link
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


def row_problem(row: Any) -> str | None:
    """What makes a parsed line unusable as a row, or None: cell keys that are not safe names (they become folder
    names), a seed or hash of the wrong form, or a known field holding the wrong kind of value."""
    if not isinstance(row, dict):
        return "not a JSON object"
    for key in ("experiment", "dataset", "technique"):
        if not (isinstance(row.get(key), str) and SAFE_NAME.fullmatch(row[key])):
            return f"'{key}' is not a safe name"
    seed, digest = row.get("seed"), row.get("config_hash")
    if not (is_integer(seed) and 0 <= seed < INT64):
        return "'seed' is not an integer in 0..2**63"
    if not (isinstance(digest, str) and SAFE_HASH.fullmatch(digest)):
        return "'config_hash' is not a hash"
    if row.get("status") not in STATUSES:
        return f"'status' is not one of {', '.join(STATUSES)}"
    for key in NUMBER_FIELDS:
        value = row.get(key)
        if value is not None and not (is_number(value) and abs(value) < INT64):
            return f"'{key}' is not a finite number"
    if row.get(AXES_FIELD) is not None and not isinstance(row[AXES_FIELD], dict):
        return f"'{AXES_FIELD}' is not a mapping of setting keys to values"
    for key, kind in [*((k, str) for k in TEXT_FIELDS), *((k, bool) for k in FLAG_FIELDS)]:
        if row.get(key) is not None and not isinstance(row[key], kind):
            return f"'{key}' is not {'text' if kind is str else 'true/false'}"
    return None


def is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: Any) -> bool:
    return is_integer(value) or (isinstance(value, float) and math.isfinite(value))


def read_rows(folder: Path) -> list[dict[str, Any]]:
    """All valid rows of a results folder; an unreadable or invalid line (a crash, a hand edit, a damaged field)
    is skipped with a warning naming the line and why. A ``results.jsonl`` that is a link is refused."""
    path = folder / RESULTS_FILE
    try:
        fh = open_binary(path, MAX_RESULTS)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise UserError(f"{path}: cannot read ({exc.strerror})") from None
    rows = []
    with fh:
        for number, line in enumerate(bounded_lines(fh), 1):
            if line is not None and not line.strip():
                continue
            row, problem = parse_line(line)
            if problem is None:
                rows.append(row)
            else:
                log.warning("%s:%d: invalid row skipped (%s)", path, number, problem)
    return rows


def bounded_lines(fh: BinaryIO) -> Iterator[bytes | None]:
    """Each line of ``fh``; None for a line longer than ``MAX_LINE`` (read past in pieces, never held whole)."""
    while line := fh.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE and not line.endswith(b"\n"):
            while (rest := fh.readline(MAX_LINE + 1)) and not rest.endswith(b"\n"):
                pass
            yield None
        else:
            yield line


def parse_line(line: bytes | None) -> tuple[Any, str | None]:
    """(row, None) for a valid row, else (None, why it is not one)."""
    if line is None:
        return None, f"longer than {MAX_LINE:,} bytes"
    try:
        row = json.loads(line.decode("utf-8"), parse_constant=reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError):  # JSONDecodeError is a ValueError
        return None, "unreadable (not UTF-8 strict JSON)"
    problem = row_problem(row)
    return (row, None) if problem is None else (None, problem)


def reject_constant(name: str) -> None:
    """Strict JSON: NaN, Infinity and -Infinity are not numbers."""
    raise ValueError(f"non-standard JSON constant {name}")


def cell_key(row: dict[str, Any]) -> tuple:
    """Identity of a finished cell for resume: the cell and its resolved-config hash."""
    return (*cell_of(row), row["config_hash"])


def finished_keys(rows: Iterable[dict[str, Any]], statuses: tuple[str, ...] = DONE_STATUSES) -> set[tuple]:
    """Cells that need no rerun: those with a row of one of ``statuses`` (failed ones are retried)."""
    return {cell_key(r) for r in rows if r.get("status") in statuses}


def cell_of(row: dict[str, Any]) -> tuple:
    """A row's (experiment, dataset, technique, seed), and its sweep point where it has one (``point_key``): a
    cell of no sweep keeps the four keys it always had."""
    point = point_key(row.get(AXES_FIELD))
    return (*(row[k] for k in CELL_KEYS), *([point] if point else []))


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
    """Rows of all folders, one per cell (``cell_of``: experiment, dataset, technique, seed, sweep point) as chosen
    by ``current_rows``."""
    rows = current_rows([row for folder in folders for row in read_rows(Path(folder))], current)
    import pandas as pd  # loaded here only: planning a run reads rows without it

    return pd.DataFrame(rows, columns=list(dict.fromkeys([*ROW_FIELDS, *(k for r in rows for k in r)])))
