"""Sanity flags: results a table may show but no claim may rest on, each with its reason and numbers. A flag bars
the metrics it names for its technique (every technique where it names none); a channel artefact bars nothing.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aebench.reporting.rows import read_samples
from aebench.results.schema import QUALITY

ALL = frozenset((*QUALITY, "train_seconds", "images_per_second"))
ACCURACY = frozenset(("accuracy",))
MIN_SEEDS = 3  # a paired t-test on fewer seeds has under 2 degrees of freedom
CHANCE_SHARE = 0.25  # accuracy keeping under this share of the classifier's margin over chance is near chance
CEILING_SHARE = 0.5  # a classifier below this share of the way from chance to perfect ranks nothing
SPREAD_FLOOR = 0.1  # outputs varying under this share of the images' own spread: near-constant
LOSSLESS_MSE = 1e-5  # a reference this close to its input reproduces it
COLOUR = (0.2, 0.02)  # a colour pixel: one channel above 0.2 while the other two are at most 0.02
COLOUR_PAIRS = 2  # an image shows an artefact with at least this many adjacent pairs of colour pixels
COLUMNS = ["table", "technique", "seed", "label", "reason", "metrics"]


def flag(table: str, technique: str | None, label: str, reason: str, metrics=ALL, seed=None) -> dict:
    return {"table": table, "technique": technique, "seed": seed, "label": label, "reason": reason, "metrics": metrics}


def colour_images(samples: dict[str, np.ndarray] | None) -> int:
    """How many saved reconstructions of grey images show a block of colour (channels that disagree)."""
    if samples is None or samples["output"].shape[1] != 3 or np.ptp(samples["target"], axis=1).max() > 1e-6:
        return 0
    ordered = np.sort(samples["output"], axis=1)
    colour = (ordered[:, 1] <= COLOUR[1]) & (ordered[:, 2] > COLOUR[0])
    pairs = (colour[:, 1:] & colour[:, :-1]).sum(axis=(1, 2)) + (colour[:, :, 1:] & colour[:, :, :-1]).sum(axis=(1, 2))
    return int((pairs >= COLOUR_PAIRS).sum())


def technique_flags(table: str, technique: str, rows: pd.DataFrame, chance: float, classes: str) -> list[dict]:
    out = []
    mse, mean_image, spread = (rows[c].astype(float).mean() for c in ("mse", "mse_mean_image", "output_spread"))
    if mse >= mean_image:
        why = f"{technique}: its MSE ({mse:.4f}) is no better than outputting the mean test image ({mean_image:.4f})"
        out.append(flag(table, technique, "ignores its input", why))
    elif spread < SPREAD_FLOOR:
        why = f"{technique}: its outputs vary {spread:.2f} times as much as the images (below {SPREAD_FLOOR})"
        out.append(flag(table, technique, "near-constant output", why))
    accuracy, clean = rows["accuracy"].astype(float).mean(), rows["accuracy_clean"].astype(float).mean()
    if clean > chance and accuracy - chance < CHANCE_SHARE * (clean - chance):
        why = (f"{technique}: accuracy {accuracy:.3f} keeps under {CHANCE_SHARE:.0%} of the classifier's margin over "
               f"chance ({chance:.2f} for {classes}; {clean:.3f} on clean images)")  # fmt: skip
        out.append(flag(table, technique, "accuracy near chance", why, ACCURACY))
    latent, native = rows["latent"].astype(float).iloc[0], rows["native_pixels"].astype(float).iloc[0]
    if rows["role"].iloc[0] == "reference" and (latent >= native or mse < LOSSLESS_MSE):
        why = (f"{technique}: a reference with latent {latent:.0f} (the data's rank is at most {native:.0f}) and MSE "
               f"{mse:.1e} reproduces its input and bounds nothing")  # fmt: skip
        out.append(flag(table, technique, "lossless", why))
    if (seeds := rows["seed"].nunique()) < MIN_SEEDS:
        why = f"{technique}: {seeds} seed{'s' * (seeds != 1)}, too few for a test ({MIN_SEEDS} needed)"
        out.append(flag(table, technique, "too few seeds", why))
    return out


def sanity_flags(ok: pd.DataFrame) -> pd.DataFrame:
    found = []
    for table, rows in ok.groupby("table", sort=False):
        classes = rows["classes"].astype(float).iloc[0]
        chance, words = (1 / classes, f"{classes:.0f} classes") if classes > 0 else (0.0, "classes unknown")
        clean = rows["accuracy_clean"].astype(float).mean()
        if clean < chance + CEILING_SHARE * (1 - chance):
            why = (f"the classifier scores only {clean:.3f} on the clean test images, under halfway from chance "
                   f"({chance:.2f}, {words}) to perfect: it ranks no technique by accuracy")  # fmt: skip
            found.append(flag(table, None, "weak classifier", why, ACCURACY))
        for technique, mine in rows.groupby("technique", sort=False):
            found += technique_flags(table, technique, mine, chance, words)
        ignoring = {f["technique"] for f in found if f["label"] == "ignores its input"}
        for row in rows[~rows["technique"].isin(ignoring)].to_dict("records"):
            if n := colour_images(read_samples(row)):
                why = (f"{row['technique']} seed {row['seed']}: colour in {n} of its saved reconstructions of grey "
                       "images (one channel bright where the others are 0)")  # fmt: skip
                found.append(flag(table, row["technique"], "channel artefact", why, frozenset(), row["seed"]))
    return pd.DataFrame(found, columns=COLUMNS)


def barring(flags: pd.DataFrame, table: str, technique: str, metric: str) -> str:
    """The labels of the flags that bar a claim on ``technique``'s ``metric`` in ``table`` ('' where none does)."""
    mine = flags[(flags["table"] == table) & (flags["technique"].isna() | (flags["technique"] == technique))]
    return "; ".join(label for label, metrics in zip(mine["label"], mine["metrics"]) if metric in metrics)
