"""Time-to-quality: test MSE against cumulative training seconds, from each cell's per-epoch ``history.json``.

Each epoch's point sits at the cell's training seconds so far: the time spent before the first epoch (a PCA
fit, an LR range test, a prepare step) plus the timed epochs, so a cell's last point is its ``train_seconds``.
The MSE is the epoch record's ``test_mse`` (pixels in [0, 1], output clamped, at full image size). Older
histories lack it: there the test loss stands in only for cells trained on plain pixel MSE (cells with their
own loss are left out) and only for full-size epochs (a progressive-resizing phase at N px, named "Npx", was
evaluated at N px and is left out).
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from aebench.errors import UserError
from aebench.files import read_bytes
from aebench.report.cellfiles import read_history, reason, skipped
from aebench.report.figures import Cell
from aebench.safe_yaml import MAX_YAML_CHARS, load_yaml

OWN_LOSS_TECHNIQUES = ("feature_loss",)  # their test_loss is not pixel MSE
REDUCED_SIZE_PHASE = re.compile(r"\d+px")  # progressive resizing's early phases, evaluated at that size


def cell_config(folder: Path) -> dict:
    """The cell's resolved config (plain YAML data, never executed), or {} where it is missing or damaged."""
    path = folder / "config.yaml"
    try:
        config = load_yaml(read_bytes(path, MAX_YAML_CHARS).decode("utf-8"), str(path))
    except FileNotFoundError:
        return {}
    except (UserError, OSError, UnicodeDecodeError) as exc:  # a link, an oversized file, beyond the YAML bounds...
        skipped(path, reason(path, exc))
        return {}
    return config if isinstance(config, dict) else {}


def epoch_mse(record: dict, technique: str, config: dict) -> float | None:
    if "test_mse" in record:
        return record["test_mse"]
    plain = config.get("train", {}).get("loss", "mse") == "mse" and technique not in OWN_LOSS_TECHNIQUES
    full_size = not REDUCED_SIZE_PHASE.fullmatch(str(record.get("phase", "")))
    return record.get("test_loss") if plain and full_size else None


def cell_curve(cell: Cell) -> list[dict]:
    """The cell's points (seconds, mse); one point at its totals where it has no epochs (PCA)."""
    history = read_history(cell.folder / "history.json")
    keys = {"group": cell.group.label, "technique": cell.technique, "seed": cell.seed}
    if not history:
        return [{**keys, "epoch": 0, "seconds": cell.train_seconds, "mse": cell.mse}]
    config = cell_config(cell.folder)
    before = cell.train_seconds - sum(h.get("seconds", 0.0) for h in history)
    points, elapsed = [], before
    for record in history:
        elapsed += record.get("seconds", 0.0)
        mse = epoch_mse(record, cell.technique, config)
        if mse is not None:
            points.append({**keys, "epoch": record["epoch"], "seconds": elapsed, "mse": mse})
    return points


def curves(cells: list[Cell]) -> pd.DataFrame:
    """All points of all cells: group, technique, seed, epoch, seconds, mse."""
    frame = pd.DataFrame([p for cell in cells for p in cell_curve(cell)])
    return frame if not frame.empty else pd.DataFrame(columns=["group", "technique", "seed", "epoch", "seconds", "mse"])


def mean_curves(points: pd.DataFrame) -> pd.DataFrame:
    """Per group, technique and epoch: mean seconds and mean MSE over seeds."""
    return points.groupby(["group", "technique", "epoch"], sort=False)[["seconds", "mse"]].mean().reset_index()


def at_equal_time(points: pd.DataFrame, group: str) -> tuple[float, pd.Series] | None:
    """The time every trained technique of the group has reached (the earliest end of a mean curve over epochs) and
    each technique's MSE at that time (its last epoch finished by then; a fit-only technique such as PCA counts
    if its fit ended by then), lowest first; None without epoch curves."""
    mine = mean_curves(points[points["group"] == group])
    trained = mine[mine["epoch"] > 0]
    if trained.empty:
        return None
    horizon = float(trained.groupby("technique", sort=False)["seconds"].max().min())
    reached = mine[mine["seconds"] <= horizon * (1 + 1e-9)]
    values = reached.sort_values("seconds").groupby("technique", sort=False)["mse"].last()
    return horizon, values.reindex(list(dict.fromkeys(mine["technique"]))).sort_values()
