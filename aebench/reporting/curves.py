"""Time-to-quality: test MSE against cumulative training seconds, from each cell's per-epoch ``history.json``.

Each epoch's point sits at the cell's training seconds so far: the time spent before the first epoch (a fit,
an LR range test, a prepare step) plus the timed epochs, so a cell's last point is its ``train_seconds``. The
MSE is the epoch record's ``test_mse`` (pixels in [0, 1], output clamped, at full image size). Older histories
lack it: there the test loss stands in only for cells trained on plain pixel MSE (not a technique with its own
loss, nor one whose loss is not recorded) and only for epochs at the evaluated image size (the record's
``image_size``, or, in histories without it, the epochs of the last phase, which trains at that size).
"""

from __future__ import annotations

import pandas as pd

from aebench.reporting.cellfiles import Cell, read_history

POINT_COLUMNS = ["group", "technique", "seed", "epoch", "seconds", "mse"]


def at_full_size(record: dict, cell: Cell, last_phase: object) -> bool:
    """Whether the epoch trained at the evaluated image size: its recorded size, else being in the last phase."""
    size = record.get("image_size")
    if size is not None and cell.image_size is not None:
        return size == cell.image_size
    return record.get("phase") == last_phase


def epoch_mse(record: dict, cell: Cell, last_phase: object) -> float | None:
    """The epoch's full-size pixel MSE, or None where the history cannot give it."""
    if "test_mse" in record:
        return record["test_mse"]
    if cell.own_loss is not False or cell.loss != "mse":
        return None
    return record.get("test_loss") if at_full_size(record, cell, last_phase) else None


def cell_curve(cell: Cell) -> list[dict]:
    """The cell's points (seconds, mse); one point at its totals where it has no epochs (a fit)."""
    history = read_history(cell.folder / "history.json")
    keys = {"group": cell.group.label, "technique": cell.technique, "seed": cell.seed}
    if not history:
        return [{**keys, "epoch": 0, "seconds": cell.train_seconds, "mse": cell.mse}]
    elapsed = cell.train_seconds - sum(h.get("seconds", 0.0) for h in history)
    points = []
    for record in history:
        elapsed += record.get("seconds", 0.0)
        mse = epoch_mse(record, cell, history[-1].get("phase"))
        if mse is not None:
            points.append({**keys, "epoch": record["epoch"], "seconds": elapsed, "mse": mse})
    return points


def curves(cells: list[Cell]) -> pd.DataFrame:
    """All points of all cells: group, technique, seed, epoch, seconds, mse."""
    frame = pd.DataFrame([p for cell in cells for p in cell_curve(cell)])
    return frame if not frame.empty else pd.DataFrame(columns=POINT_COLUMNS)


def mean_curves(points: pd.DataFrame) -> pd.DataFrame:
    """Per group, technique and epoch: mean seconds and mean MSE over seeds."""
    return points.groupby(["group", "technique", "epoch"], sort=False)[["seconds", "mse"]].mean().reset_index()


def at_equal_time(points: pd.DataFrame, group: str) -> tuple[float, pd.Series] | None:
    """The time every trained technique of the group has reached (the earliest end of a mean curve over epochs) and
    each technique's MSE at that time (its last epoch finished by then; a fit-only technique counts if its fit
    ended by then), lowest first; None without epoch curves."""
    mine = mean_curves(points[points["group"] == group])
    trained = mine[mine["epoch"] > 0]
    if trained.empty:
        return None
    horizon = float(trained.groupby("technique", sort=False)["seconds"].max().min())
    reached = mine[mine["seconds"] <= horizon * (1 + 1e-9)]
    values = reached.sort_values("seconds").groupby("technique", sort=False)["mse"].last()
    return horizon, values.reindex(list(dict.fromkeys(mine["technique"]))).sort_values()
