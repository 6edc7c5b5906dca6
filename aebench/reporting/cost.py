"""``cost.json`` as statistics rows (``COST``: the step's ratio to the baseline's with its CI; ``FIT``, ``ONE_OFF``:
seconds, never a ratio) and the learning curves on baseline-equivalent time (epochs × ratio × the baseline's epoch)."""

from __future__ import annotations

import math

import pandas as pd

COST, FIT, ONE_OFF = "cost_ratio", "fit_seconds", "one_off_seconds"
KIND_METRIC = {"fit": FIT, "one-off": ONE_OFF}
TIMES = {"equivalent": "baseline-equivalent time", "seconds": "the sweep's own clock"}


def steps_per_epoch(rows: pd.DataFrame) -> float:
    """Training steps in one epoch of these rows (their settings' batch size and drop_last), NaN where unknown."""
    settings = next((s for s in rows["settings"] if isinstance(s, dict)), {}) if "settings" in rows else {}
    batch, n = settings.get("train.batch_size"), rows["n_train"].astype(float).max()
    if not isinstance(batch, int) or batch < 1 or not n > 0:
        return math.nan
    return float(n // batch if settings.get("train.drop_last") else -(-n // batch))


def cost_records(table: str, ok: pd.DataFrame, cost: pd.DataFrame) -> list[dict]:
    """The table's rows of the statistics frame from its folders' cost records (none where they hold none)."""
    roles = dict(ok.groupby("technique", sort=False)["role"].first())
    dataset, folders = ok["dataset"].iloc[0], {str(f) for f in ok["results_folder"]}
    mine = cost[cost["folder"].astype(str).isin(folders) & (cost["dataset"] == dataset)]
    base = mine[(mine["kind"] == "step") & mine["technique"].map(roles).eq("baseline")]
    base_step = float(base["seconds_per_step"].iloc[0]) if len(base) else math.nan
    records = []  # what a record leaves out is NaN in the frame
    for entry in mine[mine["technique"].isin(roles)].drop_duplicates(["technique", "kind"]).to_dict("records"):
        technique, role = entry["technique"], roles[entry["technique"]]
        common = {"table": table, "technique": technique, "role": role, "flag": "", "pairs": 0, "note": "",
                  "caveat": "", "tests": 0, "lead_tests": 0, "machine": entry["machine"], "significant": False}  # fmt: skip
        if entry["kind"] != "step":
            note = f"once, on {int(entry['images']):,} training images"
            records.append({**common, "metric": KIND_METRIC[entry["kind"]], "n": 1, "mean": float(entry["seconds"]),
                            "seconds": float(entry["seconds"]), "standing": "", "note": note})  # fmt: skip
            continue
        ratio, low, high = (float(entry[k]) for k in ("ratio", "ci_low", "ci_high"))
        excludes = role != "baseline" and not low <= 1 <= high
        unit = 1.0 if role == "baseline" else ratio  # the baseline is the unit; its own ratio checks the instrument
        records.append({**common, "metric": COST, "n": int(entry["n"]), "mean": ratio, "ci_low": low, "ci_high": high,
                        "diff": ratio - 1, "diff_low": low - 1, "diff_high": high - 1, "significant": excludes,
                        "standing": ("cheaper" if high < 1 else "dearer") if excludes else "",
                        "seconds": unit * base_step * steps_per_epoch(ok[ok["technique"] == technique])})  # fmt: skip
    return records


def equivalent_curves(points: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Mean test MSE per table, technique and epoch at its own clock and at baseline-equivalent time."""
    epoch = stats.loc[stats["metric"] == COST, ["table", "technique", "seconds"]].dropna()
    means = points.groupby(["table", "technique", "epoch"], sort=False)[["seconds", "test_mse"]].mean().reset_index()
    out = means.merge(epoch.rename(columns={"seconds": "per_epoch"}), on=["table", "technique"])
    return out.assign(equivalent=out["epoch"] * out["per_epoch"]).drop(columns="per_epoch")


def read_off(curves: pd.DataFrame, stats: pd.DataFrame, time: str = "equivalent") -> pd.DataFrame:
    """Each technique's mean test MSE at its last epoch within the baseline's total ``time``, ranked."""
    found = []
    for table, mine in curves.groupby("table", sort=False):
        roles = stats[stats["table"] == table].groupby("technique")["role"].first()
        base = mine[mine["technique"].map(roles).eq("baseline")]
        if not len(base):
            continue
        horizon = float(base[time].max())
        for technique, c in mine.sort_values("epoch").groupby("technique", sort=False):
            within = c[c[time] <= horizon * (1 + 1e-9)]
            if len(within):
                last = within.iloc[-1]
                found.append({"table": table, "technique": technique, "time": TIMES[time], "horizon": horizon,
                              "epoch": int(last["epoch"]), "epochs": int(c["epoch"].max()), "at": float(last[time]),
                              "test_mse": float(last["test_mse"])})  # fmt: skip
    out = pd.DataFrame(found, columns=["table", "technique", "time", "horizon", "epoch", "epochs", "at", "test_mse"])
    out = out.sort_values(["table", "test_mse"], kind="stable")
    return out.assign(rank=out.groupby("table", sort=False).cumcount() + 1).reset_index(drop=True)
