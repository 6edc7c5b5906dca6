"""The rows a report reads, in one frame: per cell and setting its latest config's latest finished row, per technique
and table one recipe; a row's table is its setting (``SETTING`` and any sweep axis). Bad cell files are skipped.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from aebench.errors import UserError
from aebench.files import UnsafePath, inside, read_bytes, read_npz
from aebench.results.schema import EXTRA_FIELDS, ROW_FIELDS, cell_folder
from aebench.results.store import cell_of, current_rows, read_rows

SETTING = ["experiment", "dataset", "epochs", "budget_seconds", "n_train", "n_test", "image_size", "channels",
           "latent", "corruption", "classifier", "metric_version"]  # fmt: skip
WORDS = {"n_train": "training images", "n_test": "test images", "image_size": "px", "budget_seconds": "s budget"}
HISTORY_LIMIT = 16 * 2**20
SAMPLES = ("input", "target", "output")  # (N, C, H, W) in [0, 1]
log = logging.getLogger(__name__)


def skipped(path: Path, exc: Exception | str) -> None:
    why = f"unreadable ({type(exc).__name__})"
    why = str(exc).removeprefix(f"{path}: ") if isinstance(exc, (UserError, str)) else why
    log.warning("%s: %s; skipped in the report", path, why)


def axes_of(frame: pd.DataFrame) -> list[str]:
    return [c for c in frame if c.startswith("axis ")]


def text(value: object) -> str:
    """A recorded value in words: 'unknown' where not recorded, whole numbers as '60,000', a list of settings (the
    cycles) as 'epochs 5, lr 0.003 + epochs 10' (an unset one left out)."""
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return " + ".join(", ".join(f"{k} {text(v)}" for k, v in part.items() if v is not None) for part in value)
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "unknown" if value is None else str(value)
    if np.isnan(number):
        return "unknown"
    return f"{int(number):,}" if number.is_integer() and abs(number) < 1e15 else f"{number:g}"


def in_order(frame: pd.DataFrame) -> pd.DataFrame:
    """A series' records by point: numbers ascending, else by their words (stable within a point)."""
    numbers = pd.to_numeric(frame["point"], errors="coerce")
    key = numbers if numbers.notna().all() else frame["point"].map(text)
    return frame.iloc[np.argsort(key.to_numpy(), kind="stable")]


def setting_words(row: Mapping, keys: list[str]) -> str:
    """'15 epochs · 60,000 training images · latent 1,000', the given setting columns of one row in words."""
    out = []
    for key in keys:
        word = WORDS.get(key, key.replace("_", " ").removeprefix("axis "))
        value = text(row.get(key))
        if key in ("epochs", "channels"):
            word = word.removesuffix("s") if value == "1" else word
        if key != "budget_seconds" or value != "unknown":
            out.append(f"{value} {word}" if key in WORDS or key in ("epochs", "channels") else f"{word} {value}")
    return " · ".join(out)


def label_tables(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns ``table`` (a label: the dataset, with the experiment and what differs where needed) and ``stem``."""
    keys = [*SETTING, *axes_of(frame)]
    moved = {a.rsplit(".", 1)[-1] for a in axes_of(frame)}  # a setting's own column moves with its axis: said once
    ok = frame[frame["status"] == "ok"]
    settings = ok[keys].map(text).drop_duplicates()
    labels, stems = {}, set()
    for _, s in settings.iterrows():
        siblings = settings[(settings["dataset"] == s["dataset"]) & (settings["experiment"] == s["experiment"])]
        differ = [k for k in keys[2:] if siblings[k].nunique() > 1 and k not in moved]
        several = settings.loc[settings["dataset"] == s["dataset"], "experiment"].nunique() > 1
        point = setting_words(s.to_dict(), differ)
        tags = [s["experiment"]] * several + [point] * bool(differ)
        label = f"{s['dataset']} ({', '.join(tags)})" if tags else s["dataset"]
        stem = re.sub(r"[^0-9A-Za-z._]+", "-", f"{s['experiment']}_{s['dataset']}_{point}").strip("-_")
        while stem in stems:
            stem += "-"
        stems.add(stem)
        labels[tuple(s)] = (label, stem)
    found = [labels.get(tuple(r), admitted(r, labels)) for r in frame[keys].map(text).itertuples(index=False)]
    return frame.assign(table=[f[0] for f in found], stem=[f[1] for f in found])


def admitted(row: tuple, labels: dict) -> tuple[str | None, str | None]:
    """The table of a row that did not finish: the one whose setting agrees with every field the row records."""
    return next((v for k, v in labels.items() if all(a in ("unknown", b) for a, b in zip(row, k))), (None, None))


def one_recipe(rows: list[dict]) -> list[dict]:
    """Per table and technique, the rows of the recipe of its latest finished row (else its latest row)."""
    latest: dict[tuple, dict] = {}
    for row in sorted(rows, key=lambda r: (r["status"] == "ok", str(r.get("finished_at") or ""))):
        latest[(row["setting_key"], row["technique"])] = row
    return [r for r in rows if r.get("recipe_hash") == latest[(r["setting_key"], r["technique"])].get("recipe_hash")]


def load(folders: list[Path], current: Mapping[tuple, str] | None = None) -> pd.DataFrame:
    """The folders' rows (``current``: cell key -> config hash, a run's own); attrs['superseded']: rows left out."""
    samples_at.cache_clear()  # cell files are read afresh by each report
    rows = []
    for folder in map(Path, folders):
        for row in read_rows(folder):
            if current is None or current.get(cell_of(row)) == row["config_hash"]:
                axes = {f"axis {k}": v for k, v in (row.get("axes") or {}).items()}
                cell = cell_folder(folder, row["dataset"], row["technique"], row["seed"], row["config_hash"])
                rows.append({**row, **axes, "results_folder": str(folder), "cell_dir": str(cell)})
    keys = [*SETTING, *dict.fromkeys(k for r in rows for k in r if k.startswith("axis "))]
    for row in rows:
        row["setting_key"] = repr([row.get(k) for k in keys])
    per_config = current_rows(rows, key=lambda r: (*cell_of(r), r["config_hash"]))
    chosen = one_recipe(current_rows(per_config, key=lambda r: (*cell_of(r), r["setting_key"])))
    columns = list(dict.fromkeys([*ROW_FIELDS, *EXTRA_FIELDS, *SETTING, "settings", *(k for r in chosen for k in r)]))
    frame = label_tables(pd.DataFrame(chosen, columns=columns))
    frame.attrs["superseded"] = sum(r["status"] == "ok" for r in per_config) - int((frame["status"] == "ok").sum())
    return frame


def cell_path(row: Mapping, name: str) -> Path | None:
    """A cell file of a row, None where the cell folder lies behind a link (warned)."""
    folder = Path(row["cell_dir"])
    try:
        inside(Path(row["results_folder"]), folder)
    except UnsafePath as exc:
        skipped(folder, exc)
        return None
    return folder / name


def read_history(row: Mapping) -> list[dict]:
    """The cell's per-epoch records (``epoch``, ``seconds``, ``test_mse``), [] where absent or damaged."""
    path = cell_path(row, "history.json")
    try:
        records = json.loads(read_bytes(path, HISTORY_LIMIT).decode("utf-8")) if path else []
    except (UserError, OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        if not isinstance(exc, FileNotFoundError):  # absent: no history, said nowhere
            skipped(path, exc)
        return []
    if not isinstance(records, list) or not all(
        isinstance(r, dict) and isinstance(r.get("epoch"), int) for r in records
    ):
        skipped(path, "not a list of epoch records")
        return []
    return records


def read_samples(row: Mapping) -> dict[str, np.ndarray] | None:
    """The cell's saved test images (input, target, output: (N, C, H, W) in [0, 1]), None where absent or damaged."""
    path = cell_path(row, "samples.npz")
    return samples_at(str(path)) if path else None


@functools.lru_cache(maxsize=256)
def samples_at(name: str) -> dict[str, np.ndarray] | None:
    """Read once per report (the flags and the figures both look)."""
    path = Path(name)
    try:
        arrays = read_npz(path, list(SAMPLES))
    except (UserError, KeyError, OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        if not isinstance(exc, FileNotFoundError):  # absent: no samples, said nowhere
            skipped(path, exc)
        return None
    if any(a.dtype.kind not in "biuf" or a.ndim != 4 for a in arrays.values()):
        skipped(path, "not 4-D numeric arrays")
        return None
    return arrays


def curves(ok: pd.DataFrame) -> pd.DataFrame:
    """Test MSE per epoch of every finished cell at cumulative training seconds (ending at train_seconds)."""
    points = []
    for row in ok.to_dict("records"):
        history = read_history(row)
        elapsed = float(row["train_seconds"]) - sum(float(h.get("seconds") or 0) for h in history)
        for h in history:
            elapsed += float(h.get("seconds") or 0)
            if isinstance(h.get("test_mse"), (int, float)):
                keys = {k: row[k] for k in ("table", "technique", "seed")}
                points.append({**keys, "epoch": h["epoch"], "seconds": elapsed, "test_mse": float(h["test_mse"])})
    return pd.DataFrame(points, columns=["table", "technique", "seed", "epoch", "seconds", "test_mse"])
