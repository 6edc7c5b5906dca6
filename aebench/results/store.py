"""The append-only results store (``results.jsonl``), resume keys, and pandas aggregation."""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

log = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
CELL_KEYS = ["experiment", "dataset", "technique", "seed"]
ROW_FIELDS = [
    *CELL_KEYS,
    "status",
    "reason",
    "mae",
    "mse",
    "psnr",
    "ssim",
    "accuracy",
    "accuracy_clean",
    "train_seconds",
    "eval_seconds",
    "images_per_second",
    "epochs",
    "params",
    "peak_memory_mb",
    "device",
    "torch_version",
    "git_commit",
    "config_hash",
]
METRICS = ["mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean", "train_seconds", "images_per_second"]
DONE_STATUSES = ("ok", "skipped")


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


def aggregate(frame: pd.DataFrame, metrics: list[str] = METRICS) -> pd.DataFrame:
    """Mean, sd and seed count per (dataset, technique) over ``ok`` rows, techniques in first-seen order."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame()
    grouped = ok.groupby(["dataset", "technique"], sort=False)[metrics].agg(["mean", "std"])
    grouped[("seeds", "n")] = ok.groupby(["dataset", "technique"], sort=False).size()
    return grouped


def format_mean_sd(mean: float, sd: float, digits: int) -> str:
    """``mean ± sd`` (sd omitted for a single seed)."""
    if pd.isna(mean):
        return "–"
    if pd.isna(sd):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {sd:.{digits}f}"


DIGITS = {
    "mae": 5,
    "mse": 6,
    "psnr": 2,
    "ssim": 4,
    "accuracy": 4,
    "accuracy_clean": 4,
    "train_seconds": 1,
    "images_per_second": 0,
}


def summary_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A printable table: one row per (dataset, technique), ``mean ± sd`` strings and the seed count."""
    stats = aggregate(frame)
    if stats.empty:
        return pd.DataFrame()
    table = pd.DataFrame(index=stats.index)
    for metric in METRICS:
        table[metric] = [
            format_mean_sd(m, s, DIGITS[metric]) for m, s in zip(stats[(metric, "mean")], stats[(metric, "std")])
        ]
    table["seeds"] = stats[("seeds", "n")].astype(int)
    return table.reset_index()
