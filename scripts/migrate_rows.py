"""One-time migration of the committed results (report/results/*/): every row gets every field the report reads,
taken from its cell's files, so the report never reads a cell's config.yaml and has no path for older rows.

Added to each row where absent (null where its files cannot tell):
- ``classifier``: the downstream classifier in words ('cnn, 10 epochs, lr 0.002, batch 128'), from config.yaml;
- ``settings``: the cell's resolved config as flat dotted keys ({'train.lr': 0.001, ...}), from config.yaml;
- ``recipe_hash``: the hash of config.yaml without its seed (equal across the seeds of one config);
- ``role``, ``own_loss``, ``needs_weights``: the technique registry's facts (as the report filled them before);
- ``channels``, ``image_size``, ``latent``: from config.yaml; ``native_pixels``: 784 and ``classes``: 10 (MNIST and
  Fashion-MNIST, 28x28 pixels); ``epochs_trained``: the epochs in history.json (0 for a fit);
- ``mse_mean_image``, ``output_spread``: estimated from the cell's 8 saved test images (samples.npz);
- every other field of the schema, null.
Each history.json record without ``test_mse`` gets it from ``test_loss`` where that loss is the pixel MSE: a
cell trained on plain MSE (no loss of its own) and an epoch at the evaluated image size (the last phase).

Run once from the repository root: ``python scripts/migrate_rows.py report/results/*/``; rerunning changes nothing.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import yaml

from aebench.config import RECIPE_SECTIONS, SECTIONS, classifier_text, digest, dotted, to_plain
from aebench.results.schema import EXTRA_FIELDS, ROW_FIELDS, cell_folder
from aebench.techniques import TECHNIQUES

KNOWN = {"mnist": (784, 10), "fashion-mnist": (784, 10)}  # native pixels, classes


def defaults(technique: str) -> dict:
    """Every setting of a cell of ``technique`` at its default, as flat dotted keys."""
    sections = {name: cls() for name, cls in SECTIONS.items()}
    return dotted(to_plain({**sections, "params": TECHNIQUES[technique].params()}))


def spread(samples: Path) -> tuple[float | None, float | None]:
    if not samples.is_file():
        return None, None
    with np.load(samples) as z:
        target, output = z["target"].astype(np.float64), z["output"].astype(np.float64)
    variance = float(target.var(axis=0, ddof=1).mean())
    return variance, float(np.sqrt(output.var(axis=0, ddof=1).mean() / variance))


def migrate_history(path: Path, row: dict, config: dict) -> None:
    if not path.is_file():
        return
    history = json.loads(path.read_text())
    if not history or all("test_mse" in h for h in history):
        return
    plain_mse = row.get("own_loss") is False and config.get("train", {}).get("loss") == "mse"
    last = history[-1].get("phase")
    for record in history:
        if "test_mse" not in record:
            at_size = record.get("image_size", row["image_size"]) == row["image_size"] and record.get("phase") == last
            record["test_mse"] = record["test_loss"] if plain_mse and at_size else None
    path.write_text(json.dumps(history, indent=1, allow_nan=False))


def migrate(folder: Path) -> None:
    lines = (folder / "results.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    for row in rows:
        cell = cell_folder(folder, row["dataset"], row["technique"], row["seed"], row["config_hash"])
        config = yaml.safe_load((cell / "config.yaml").read_text()) if (cell / "config.yaml").is_file() else {}
        sections = {k: v for k, v in config.items() if k in RECIPE_SECTIONS}
        row.setdefault("classifier", classifier_text(config["classifier"]) if "classifier" in config else None)
        row.setdefault("settings", dotted(sections) if sections else None)
        if row["settings"] is not None:  # options added after the row was written, at their defaults
            row["settings"] = {**defaults(row["technique"]), **row["settings"]}
        row.setdefault("recipe_hash", digest({k: v for k, v in config.items() if k != "seed"}) if config else None)
        for name, value in {name: info.facts(info.params()) for name, info in TECHNIQUES.items()}.get(
            row["technique"], {}
        ).items():
            row.setdefault(name, value)
        for name, value in (
            ("channels", "data.channels"),
            ("image_size", "data.image_size"),
            ("latent", "model.latent"),
        ):
            row.setdefault(name, (row["settings"] or {}).get(value))
        native, classes = KNOWN.get(row["dataset"], (None, None))
        row.setdefault("native_pixels", native)
        row.setdefault("classes", classes)
        if row["status"] == "ok" and "epochs_trained" not in row:
            history = cell / "history.json"
            row["epochs_trained"] = float(len(json.loads(history.read_text()))) if history.is_file() else None
        if row["status"] == "ok" and "mse_mean_image" not in row:
            row["mse_mean_image"], row["output_spread"] = spread(cell / "samples.npz")
        for name in (*ROW_FIELDS, *EXTRA_FIELDS):
            row.setdefault(name, None)
        migrate_history(cell / "history.json", row, config)
    text = "".join(json.dumps(r, allow_nan=False) + "\n" for r in rows)
    (folder / "results.jsonl").write_text(text)


if __name__ == "__main__":
    for name in sys.argv[1:]:
        migrate(Path(name))
