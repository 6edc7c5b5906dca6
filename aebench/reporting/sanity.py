"""Sanity flags: results a table may show but no claim may rest on, each with its reason in words.

Computed per comparison group from the rows (means over seeds) and, for rows written before the needed fields
existed, from the cell's saved test images. A flagged technique is marked in tables and figures, and left out
of "best" claims, orderings and tests on the metrics its flag covers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aebench.results.schema import QUALITY

ALL = frozenset((*QUALITY, "train_seconds", "images_per_second"))
ACCURACY = frozenset(("accuracy",))
MIN_SEEDS = 3  # a paired t-test on fewer seeds has under 2 degrees of freedom: too few for a test
CHANCE_SHARE = 0.25  # accuracy keeping under this share of the classifier's margin over chance is near chance
CEILING_SHARE = 0.5  # a classifier below this share of the way from chance to perfect cannot rank techniques
SPREAD_FLOOR = 0.1  # outputs varying across test images under this share of the images' own spread: near-constant
LOSSLESS_MSE = 1e-5  # a reference this close to its input reproduces it (PSNR above 50 dB)
ASSUMED_CLASSES = 10  # rows written before class counts were recorded


@dataclass(frozen=True)
class Flag:
    """One reason not to rest a claim on a technique (``technique`` None: on every technique of the table)."""

    technique: str | None
    label: str  # a few words, for a table's Flags column and figure labels
    reason: str  # the whole reason, with its numbers
    metrics: frozenset[str] = ALL  # the metrics it bars claims on

    def covers(self, technique: str, metric: str) -> bool:
        return self.technique in (None, technique) and metric in self.metrics


@dataclass(frozen=True)
class Flags:
    """The flags of one group."""

    flags: tuple[Flag, ...] = ()

    def of(self, technique: str) -> list[Flag]:
        """The flags that name this technique (not the table-wide ones)."""
        return [f for f in self.flags if f.technique == technique]

    def barring(self, technique: str, metric: str) -> list[Flag]:
        return [f for f in self.flags if f.covers(technique, metric)]

    def claimable(self, technique: str, metric: str) -> bool:
        return not self.barring(technique, metric)

    def why_not(self, technique: str, metric: str) -> str | None:
        """'flagged: collapsed; near chance' where a flag bars this claim, else None."""
        found = self.barring(technique, metric)
        return f"flagged: {'; '.join(f.label for f in found)}" if found else None


def mean_of(rows: pd.DataFrame, column: str) -> float | None:
    if column not in rows:
        return None
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def first_of(rows: pd.DataFrame, column: str) -> float | None:
    if column not in rows:
        return None
    values = pd.to_numeric(rows[column], errors="coerce").dropna()
    return float(values.iloc[0]) if len(values) else None


def sample_spread(samples: dict[str, np.ndarray] | None) -> tuple[float, float] | None:
    """From saved test images: (MSE of outputting their mean image, the outputs' spread over the targets')."""
    if samples is None or len(samples["target"]) < 2:
        return None
    target, output = (samples[k].astype(np.float64) for k in ("target", "output"))
    variance = float(target.var(axis=0, ddof=1).mean())
    if variance <= 0:
        return None
    return variance, float(np.sqrt(output.var(axis=0, ddof=1).mean() / variance))


def ignores_input(technique: str, rows: pd.DataFrame, samples: dict[str, np.ndarray] | None) -> Flag | None:
    """A reconstruction no better than the mean test image, or one that barely varies with its input."""
    mean_image, spread = mean_of(rows, "mse_mean_image"), mean_of(rows, "output_spread")
    source = ""
    if mean_image is None or spread is None:
        estimate = sample_spread(samples)
        if estimate is None:
            return None
        mean_image, spread = estimate
        source = f", estimated from the {len(samples['target'])} saved test images"  # type: ignore[index]
    mse = float(rows["mse"].mean())
    if mse >= mean_image:
        return Flag(
            technique,
            "ignores its input",
            f"{technique}: its MSE ({mse:.4f}) is no better than outputting the mean test image for every input "
            f"({mean_image:.4f}{source})",
        )
    if spread < SPREAD_FLOOR:
        return Flag(
            technique,
            "near-constant output",
            f"{technique}: its reconstructions vary across test images {spread:.2f} times as much as the images "
            f"do{source} (below {SPREAD_FLOOR}): the output hardly depends on the input",
        )
    return None


def chance_of(rows: pd.DataFrame) -> tuple[float, str]:
    """Chance accuracy, and how the class count is known."""
    classes = first_of(rows, "classes")
    if classes:
        return 1 / classes, f"{int(classes)} classes"
    return 1 / ASSUMED_CLASSES, f"{ASSUMED_CLASSES} classes assumed: the rows predate class counts"


def weak_ceiling(rows: pd.DataFrame) -> Flag | None:
    """The classifier itself, on the clean test images, too weak to rank techniques by accuracy."""
    clean = mean_of(rows, "accuracy_clean")
    if clean is None:
        return None
    chance, classes = chance_of(rows)
    bound = chance + CEILING_SHARE * (1 - chance)
    if clean >= bound:
        return None
    return Flag(
        None,
        "weak classifier",
        f"the classifier scores only {clean:.3f} on the clean test images, below {bound:.2f} (halfway from chance, "
        f"{chance:.2f} for {classes}, to perfect): too weak to rank techniques by accuracy",
        ACCURACY,
    )


def near_chance(technique: str, rows: pd.DataFrame) -> Flag | None:
    """Accuracy on the reconstructions that keeps little of the classifier's margin over chance."""
    accuracy, clean = mean_of(rows, "accuracy"), mean_of(rows, "accuracy_clean")
    chance, classes = chance_of(rows)
    if accuracy is None or clean is None or clean <= chance:
        return None
    if accuracy - chance >= CHANCE_SHARE * (clean - chance):
        return None
    return Flag(
        technique,
        "accuracy near chance",
        f"{technique}: accuracy {accuracy:.3f} keeps under {CHANCE_SHARE:.0%} of the classifier's margin over "
        f"chance ({chance:.2f} for {classes}; {clean:.3f} on clean images)",
        ACCURACY,
    )


def lossless(technique: str, rows: pd.DataFrame) -> Flag | None:
    """A reference that keeps as many components as the data has dimensions: it reproduces its input."""
    if rows["role"].iloc[0] != "reference":
        return None
    latent, native = first_of(rows, "latent"), first_of(rows, "native_pixels")
    if latent is not None and native is not None and latent >= native:
        return Flag(
            technique,
            "lossless",
            f"{technique}: a reference with latent {int(latent)}, at least the data's rank (at most {int(native)}, "
            "the values of one native image: resizing and repeating channels are linear), reproduces its input "
            "and bounds nothing",
        )
    mse = float(rows["mse"].mean())
    if mse < LOSSLESS_MSE:
        rank = "" if native is not None else "; the data's rank is not recorded in these rows"
        return Flag(
            technique,
            "lossless",
            f"{technique}: a reference with MSE {mse:.1e} (below {LOSSLESS_MSE:g}) reproduces its input and bounds "
            f"nothing{rank}",
        )
    return None


def few_seeds(technique: str, rows: pd.DataFrame) -> Flag | None:
    seeds = rows["seed"].nunique()
    if seeds >= MIN_SEEDS:
        return None
    return Flag(
        technique,
        "too few seeds",
        f"{technique}: {seeds} seed{'s' * (seeds != 1)}, too few for a test ({MIN_SEEDS} needed)",
    )


def sanity_flags(ok: pd.DataFrame, samples: dict[str, dict[str, np.ndarray] | None]) -> Flags:
    """Every flag of one group's finished rows; ``samples`` holds each technique's saved test images (or None)."""
    found = [weak_ceiling(ok)]
    for technique, rows in ok.groupby("technique", sort=False):
        found += [
            ignores_input(technique, rows, samples.get(technique)),
            near_chance(technique, rows),
            lossless(technique, rows),
            few_seeds(technique, rows),
        ]
    return Flags(tuple(f for f in found if f is not None))
