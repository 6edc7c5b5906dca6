"""Results rows and cell folders made up for report tests: what a run writes, with the numbers chosen."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aebench.reporting.flags import sanity_flags
from aebench.reporting.rows import load
from aebench.reporting.stats import statistics
from aebench.results.schema import EXTRA_FIELDS, ROW_FIELDS, cell_folder
from aebench.results.store import append_row

ROLES = {"baseline": "baseline", "pca": "reference"}
REASONS = {"failed": "RuntimeError: shapes do not match", "skipped": "no pretrained weights offline; run once online"}


def make_row(
    experiment: str, dataset: str, technique: str, seed: int, status: str = "ok", rng: np.random.Generator | None = None,
    **fields: Any,
) -> dict[str, Any]:  # fmt: skip
    """A row as the runner writes it (every fact recorded), random plausible metrics for ok rows, then ``fields``."""
    rng = rng or np.random.default_rng(seed)
    row = dict.fromkeys([*ROW_FIELDS, *EXTRA_FIELDS])
    row.update(
        experiment=experiment,
        dataset=dataset,
        technique=technique,
        seed=seed,
        status=status,
        reason=REASONS.get(status, ""),
        corruption="none",
        epochs=2,
        device="cpu",
        precision="fp32",
        torch_version="2.x",
        git_commit="abc1234",
        config_hash=f"h{seed}",
        aebench_version="0.1.0",
        finished_at=f"2025-01-0{seed + 1}T10:00:00",
        role=ROLES.get(technique, "compared"),
        own_loss=False,
        channels=1,
        image_size=8,
        latent=16,
        native_pixels=64,
        metric_version=2,
        classes=10,
    )
    if status == "ok":
        mse = float(rng.uniform(0.001, 0.05))
        row.update(
            mae=float(rng.uniform(0.01, 0.2)),
            mse=mse,
            psnr=float(-10 * np.log10(mse)),
            ssim=float(rng.uniform(0.5, 1)),
            accuracy=float(rng.uniform(0.5, 0.9)),
            accuracy_clean=0.97,
            train_seconds=float(rng.uniform(1, 100)),
            eval_seconds=1.0,
            images_per_second=float(rng.uniform(100, 5000)),
            n_train=1000,
            n_test=200,
            epochs_trained=2.0,
            mse_mean_image=0.1,
            output_spread=0.9,
            step_mode="eager",
        )
    row.update(fields)
    return row


def write_cell(folder: Path, rng: np.random.Generator, channels: int = 1, epochs: int = 2, size: int = 8) -> None:
    """The artefacts a finished cell leaves: its config, per-epoch history and saved test images."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(
        "train: {loss: mse}\nclassifier: {model: cnn, epochs: 2, lr: 0.002, batch_size: 32}\n"
    )
    history = [
        {"epoch": e, "phase": "train", "image_size": size, "lr": 1e-3, "train_loss": 1 / e,
         "test_loss": float(rng.uniform(0.5, 1)) / e, "test_mse": float(rng.uniform(0.01, 0.05)) / e, "seconds": 1.0}
        for e in range(1, epochs + 1)
    ]  # fmt: skip
    (folder / "history.json").write_text(json.dumps(history))
    images = {k: rng.uniform(0, 1, (8, channels, size, size)).astype(np.float32) for k in ("input", "target", "output")}
    np.savez_compressed(folder / "samples.npz", **images)


def write_results(folder: Path, rows: list[dict[str, Any]], cells: bool = True) -> Path:
    """Append ``rows`` to ``folder/results.jsonl`` and give each ok row a cell folder (unless ``cells`` is False)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for row in rows:
        append_row(folder, row)
        if cells and row["status"] == "ok":
            cell = cell_folder(folder, row["dataset"], row["technique"], row["seed"], row["config_hash"])
            write_cell(cell, rng, channels=row.get("channels") or 1, epochs=int(row["epochs"]))
    return folder


def frame_of(rows: list[dict[str, Any]], tmp: Path, cells: bool = False) -> pd.DataFrame:
    """The report's frame of these rows (written to a folder, read back as the report reads them)."""
    return load([write_results(tmp, rows, cells=cells)])


def stats_of(rows: list[dict[str, Any]], tmp: Path, cells: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The statistics frame and the flags of these rows, as the report computes them."""
    frame = frame_of(rows, tmp, cells)
    ok = frame[(frame["status"] == "ok") & frame["table"].notna()]
    flags = sanity_flags(ok)
    return statistics(ok, flags), flags


def record(stats: pd.DataFrame, technique: str, metric: str = "mse") -> dict[str, Any]:
    """The statistics frame's row of one technique and metric (the frame's only table)."""
    found = stats[(stats["technique"] == technique) & (stats["metric"] == metric)]
    assert len(found) == 1, found
    return found.iloc[0].to_dict()
