"""The report's figures from the statistics frame, the curves and the saved test images, as PNG and PDF without
dates (reruns match); each panel spans its data (accuracy never from 0), times and MSE on log axes."""

from __future__ import annotations

import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd
import seaborn as sns

from aebench.files import atomic_write, safe_folder
from aebench.reporting.rows import text
from aebench.results.schema import QUALITY, SPECS

FLAGGED = "#a0a0a0"
PNG_DPI = 110
PNG_META, PDF_META = {"Software": None}, {"Creator": None, "Producer": None, "CreationDate": None}


def save(fig: plt.Figure, out: Path, name: str) -> list[Path]:
    """Write ``figures/<name>.png`` and ``.pdf`` atomically (never through a link) and close the figure."""
    folder = safe_folder(out, out / "figures")
    try:
        atomic_write(folder / f"{name}.png", lambda t: fig.savefig(t, format="png", dpi=PNG_DPI, metadata=PNG_META))
        atomic_write(folder / f"{name}.pdf", lambda t: fig.savefig(t, format="pdf", metadata=PDF_META))
    finally:
        plt.close(fig)
    return [folder / f"{name}.png", folder / f"{name}.pdf"]


def palette(techniques: list[str]) -> dict[str, tuple]:
    """One colour per technique across the report (tab10 without its grey, which marks flagged ones)."""
    tab = [c for i, c in enumerate(sns.color_palette("tab10", 10)) if i != 7]
    return dict(zip(techniques, tab if len(techniques) <= len(tab) else sns.color_palette("husl", len(techniques))))


def metrics(stats: pd.DataFrame, colours: dict, title: str) -> plt.Figure:
    """Mean and 95 % CI per technique, one panel per metric; train time on a log axis."""
    shown = list(dict.fromkeys(stats["metric"]))
    order = list(dict.fromkeys(stats["technique"]))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(2, 3, figsize=(11, 1.6 + 0.5 * len(order)), sharey=True, layout="constrained")
    for ax, metric in zip(axes.flat, shown):
        mine = stats[stats["metric"] == metric].set_index("technique").reindex(order)
        sound = mine[mine["flag"] == ""] if (mine["flag"] == "").any() else mine
        log = metric == "train_seconds"
        lows = [v for v in [*sound["ci_low"], *sound["mean"]] if not log or v > 0]
        low, high = np.nanmin(lows or [np.nan]), np.nanmax([*sound["ci_high"], *sound["mean"]])
        pad = (high / low) ** 0.08 if log else (high - low) * 0.08 or abs(high) * 0.05 or 1.0
        low, high = (low / pad, high * pad) if log else (low - pad, high + pad)
        for y, (technique, r) in enumerate(mine.iterrows()):
            colour = FLAGGED if r["flag"] else colours[technique]
            if not low <= r["mean"] <= high:  # a flagged technique off the sound ones' scale: its value at the edge
                edge, side = (low, "left") if r["mean"] < low else (high, "right")
                ax.text(edge, y, f" {r['mean']:.3g} ", ha=side, va="center", fontsize=7, color=FLAGGED)
                continue
            err = [[r["mean"] - r["ci_low"]], [r["ci_high"] - r["mean"]]] if r["n"] > 1 else None
            ax.errorbar(r["mean"], y, xerr=err, fmt="o", color=colour, capsize=3)
        ax.set_xscale("log" if log else "linear")
        if log:
            ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5) if high / low < 30 else (1,)))
            ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        if np.isfinite([low, high]).all() and high > low:
            ax.set_xlim(low, high)
        ax.set_yticks(range(len(order)), order)
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set_title(SPECS[metric].title(), fontsize=9)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: mean and 95 % CI over seeds (grey: flagged)", fontsize=10)
    return fig


def beside_study(frame: pd.DataFrame, colours: dict, title: str) -> plt.Figure:
    """Per metric: our 95 % prediction interval (bar), our mean (dot), the study's value (cross)."""
    shown = [m for m in ("mae", "mse", "accuracy") if (frame["metric"] == m).any()]
    order = list(dict.fromkeys(frame["technique"]))
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(1, len(shown), figsize=(4 * len(shown), 1.4 + 0.45 * len(order)), sharey=True,
                                 layout="constrained", squeeze=False)  # fmt: skip
    for ax, metric in zip(axes[0], shown):
        mine = frame[frame["metric"] == metric].set_index("technique")
        for technique, r in mine.iterrows():
            y, colour = order.index(technique), colours.get(technique, "black")
            ax.plot([r["pi_low"], r["pi_high"]], [y, y], color=colour, lw=5, alpha=0.35, solid_capstyle="butt")
            ax.plot(r["mean"], y, "o", color=colour)
            ax.plot(r["study"], y, "X", color="black", ms=8)
        ax.set_yticks(range(len(order)), order)
        ax.set_ylim(len(order) - 0.5, -0.5)
        ax.set_title(SPECS[metric].title(), fontsize=9)
    handles = [plt.Line2D([], [], color="grey", lw=5, alpha=0.35), plt.Line2D([], [], marker="o", ls="", color="grey"),
               plt.Line2D([], [], marker="X", ls="", color="black")]  # fmt: skip
    fig.legend(handles, ["our 95 % prediction interval", "our mean", "the study (one run)"], loc="outside lower center",
               ncols=3, frameon=False, fontsize=8)  # fmt: skip
    fig.suptitle(f"{title} beside the study", fontsize=10)
    return fig


def along_axis(stats: pd.DataFrame, colours: dict, title: str) -> plt.Figure:
    """Each measure against the axis: mean and CI per technique, filled where the reference differs."""
    points = list(dict.fromkeys(stats["point"].map(text)))
    numeric = pd.to_numeric(pd.Series(points), errors="coerce")
    spread = numeric.notna().all() and (numeric > 0).all() and numeric.max() >= 4 * numeric.min()
    x = dict(zip(points, numeric if numeric.notna().all() else range(len(points))))
    shown = [m for m in QUALITY if (stats["metric"] == m).any()]
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(2, 3, figsize=(11, 6.4), layout="constrained")
    for ax, metric in zip(axes.flat, shown):
        for technique, line in stats[stats["metric"] == metric].groupby("technique", sort=False):
            line = line.assign(x=line["point"].map(text).map(x)).sort_values("x")
            ref = (line["role"] == "reference").all()
            colour = "black" if ref else colours.get(technique, FLAGGED)
            ax.plot(line["x"], line["mean"], "--" if ref else "-", color=colour, lw=1.4, label=technique)
            ax.fill_between(line["x"], line["ci_low"], line["ci_high"], color=colour, alpha=0.12, lw=0)
            for filled, dots in line.groupby(line["ref_significant"] | ref):
                ax.plot(dots["x"], dots["mean"], "s" if ref else "o", color=colour, ms=6,
                        mfc=colour if filled else "white", ls="")  # fmt: skip
        if spread:
            ax.set_xscale("log", base=2)
        ax.set_xticks(list(x.values()), [textwrap.fill(p, 14) for p in x], fontsize=8 if spread else 7)
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel(stats["axis"].iloc[0], fontsize=8)
        ax.set_title(SPECS[metric].title(), fontsize=9)
    handles, names = axes.flat[0].get_legend_handles_labels()
    handles += [plt.Line2D([], [], marker="o", ls="", color="grey"), plt.Line2D([], [], marker="o", ls="", color="grey",
                                                                             mfc="white")]  # fmt: skip
    names += ["differs from the reference (Holm over the points)", "no difference shown (or untested)"]
    for ax in list(axes.flat)[len(shown) :]:
        ax.axis("off")
    axes.flat[-1].legend(handles, names, loc="center", frameon=False, fontsize=8)
    fig.suptitle(f"{title}: each measure against {stats['axis'].iloc[0]} (mean and 95 % CI over seeds)", fontsize=10)
    return fig


def learning_curves(points: pd.DataFrame, study: pd.DataFrame, colours: dict, title: str) -> plt.Figure:
    """Test MSE after each epoch (log axis): each seed thin, the mean thick, the study's run dashed black."""
    order = list(dict.fromkeys([*points["technique"], *study["technique"]]))
    cols = min(3, len(order))
    rows = -(-len(order) // cols)
    with sns.axes_style("whitegrid"):
        fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 0.8 + 2.6 * rows), sharey=True, squeeze=False,
                                 layout="constrained")  # fmt: skip
    for ax, technique in zip(axes.flat, order):
        mine = points[points["technique"] == technique]
        for _, seed in mine.groupby("seed"):
            ax.plot(seed["epoch"], seed["test_mse"], color=colours.get(technique, "grey"), lw=0.7, alpha=0.5)
        if len(mine):
            mean = mine.groupby("epoch")["test_mse"].mean()
            ax.plot(mean.index, mean.values, color=colours.get(technique, "grey"), lw=2, label="ours")
        theirs = study[study["technique"] == technique]
        if len(theirs):
            ax.plot(theirs["epoch"], theirs["test_mse"], "k--", lw=1.2, label="the study")
        ax.set_yscale("log")
        ax.set_title(technique, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(order) :]:
        ax.set_visible(False)
    fig.suptitle(f"{title}: test MSE after each epoch (log scale)", fontsize=10)
    return fig


def equal_time(curves: pd.DataFrame, horizon: float, colours: dict, title: str) -> plt.Figure:
    """Mean test MSE against baseline-equivalent time; a dotted line at ``horizon`` (NaN: none)."""
    with sns.axes_style("whitegrid"):
        fig, ax = plt.subplots(figsize=(7, 3.6), layout="constrained")
    for technique, mine in curves.groupby("technique", sort=False):
        ax.plot(mine["equivalent"], mine["test_mse"], "o-", ms=3, lw=1.5, color=colours.get(technique, "grey"),
                label=technique)  # fmt: skip
    if np.isfinite(horizon):
        ax.axvline(horizon, color="black", ls=":", lw=1, label="the baseline's whole run")
    ax.set(xscale="log", yscale="log", ylabel="test MSE (lower is better)")
    ax.set_xlabel("baseline-equivalent time (s): epochs × controlled cost ratio × the baseline's epoch", fontsize=8)
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1, 2, 5)))
        axis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda x, _: f"{x:g}"))
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"{title}: test MSE at equal compute (mean over seeds)", fontsize=10)
    return fig


def reconstructions(samples: dict[str, dict[str, np.ndarray]], notes: dict[str, str], title: str) -> plt.Figure:
    """The originals, then per technique its reconstructions and |output − target| (``notes``: flags)."""
    first = next(iter(samples.values()))
    strips = [("original", strip(first["target"]), "gray")]
    for technique, s in samples.items():
        label = technique + (f" ({notes[technique]})" if technique in notes else "")
        error = np.abs(s["output"] - s["target"]).mean(axis=1, keepdims=True)
        strips += [(label, strip(s["output"]), "gray"), (f"{technique}: error", strip(error * 2, fill=0.0), "Reds")]
    fig, axes = plt.subplots(len(strips), 1, figsize=(8.5, 0.4 + 0.95 * len(strips)), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, (name, image, cmap) in zip(axes[:, 0], strips):
        ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(name, loc="left", fontsize=8, pad=2)
    fig.suptitle(f"{title}: test images, reconstructions and their errors", fontsize=10)
    return fig


def strip(images: np.ndarray, fill: float = 1.0) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H, N*(W+1), C) strip with one-pixel gaps of ``fill``."""
    n, c, h, w = images.shape
    out = np.full((h, n * (w + 1) - 1, c), fill, dtype=np.float32)
    for i, image in enumerate(images):
        out[:, i * (w + 1) : i * (w + 1) + w] = image.transpose(1, 2, 0)
    return out.clip(0, 1)
