"""One comparison group's charts: metric bars, accuracy against MSE, paired differences, test loss per epoch,
time to quality. Each panel scales to the techniques a claim may rest on; flagged ones are drawn grey and, off
the scale, named with their value instead of squashing the rest."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from aebench.reporting.cellfiles import Cell, read_history
from aebench.reporting.conditions import time_caveat
from aebench.reporting.curves import at_full_size
from aebench.reporting.figures import FLAGGED, Drawn
from aebench.reporting.groups import Group
from aebench.reporting.sanity import Flags, chance_of
from aebench.reporting.statistics import ALPHA, STAT_METRICS
from aebench.results.schema import SPECS

MARKERS = ("o", "s", "D", "^", "v", "P", "X", "*", "<", ">")
HATCH = "///"


@dataclass(frozen=True)
class View:
    """What every chart of one group draws from."""

    group: Group
    ok: pd.DataFrame  # the group's finished rows
    flags: Flags
    colours: dict[str, tuple]
    order: list[str]  # techniques in table order
    stats: pd.DataFrame  # seed_statistics of the group

    def barred(self, technique: str, *metrics: str) -> bool:
        return any(self.flags.barring(technique, m) for m in metrics)

    def colour(self, technique: str, *metrics: str) -> object:
        return FLAGGED if self.barred(technique, *metrics) else self.colours[technique]

    def marker(self, technique: str) -> str:
        return MARKERS[self.order.index(technique) % len(MARKERS)]

    def is_reference(self, technique: str) -> bool:
        return bool((self.ok.loc[self.ok["technique"] == technique, "role"] == "reference").any())

    def name(self, technique: str, *metrics: str) -> str:
        """The technique as a legend names it, with '(reference, flagged)' where they apply."""
        notes = [
            word
            for word, on in (("reference", self.is_reference(technique)), ("flagged", self.barred(technique, *metrics)))
            if on
        ]
        return technique + (f" ({', '.join(notes)})" if notes else "")

    def time_caveat(self) -> str:
        """' Times are not like-for-like: ...' for a caption where the rows were timed unequally, else ''."""
        caveat = time_caveat(self.ok)
        return f" Times are {caveat}." if caveat else ""

    @property
    def any_flagged(self) -> bool:
        return any(self.barred(t, *STAT_METRICS) for t in self.order)


def span(lows: list[float], highs: list[float], log: bool = False) -> tuple[float, float]:
    """Axis limits around the given extents with a margin (multiplicative on a log axis)."""
    low, high = float(np.nanmin(lows)), float(np.nanmax(highs))
    if log:
        return low / 1.4, high * 1.4
    pad = (high - low) * 0.08 or abs(high) * 0.1 or 1.0
    return low - pad, high + pad


def number(metric: str, x: float) -> str:
    """A value printed on a chart: the metric's digits (at most 4), or 3 significant ones where those show 0."""
    text = f"{x:.{min(SPECS[metric].digits, 4)}f}"
    return f"{x:.3g}" if x and not text.strip("-0.") else text


def metric_bars(view: View) -> Drawn:
    """Mean ± sd per technique and metric as horizontal bars, one panel per metric."""
    n = len(view.order)
    fig, axes = plt.subplots(2, 3, figsize=(11, 1.9 + 0.62 * n), sharey=True, layout="constrained")
    stats = view.ok.groupby("technique", sort=False)[list(STAT_METRICS)].agg(["mean", "std"])
    clipped = False
    for ax, metric in zip(axes.flat, STAT_METRICS):
        means, sds = stats.loc[view.order, (metric, "mean")], stats.loc[view.order, (metric, "std")].fillna(0)
        scale = [t for t in view.order if not view.barred(t, metric)] or view.order
        high = float(np.nan_to_num((means[scale] + sds[scale]).max())) * 1.12 or 1.0
        if metric == "accuracy":
            clean = float(view.ok["accuracy_clean"].mean())
            ax.axvline(clean, color="black", ls="--", lw=1)
            ax.axvline(chance_of(view.ok)[0], color="black", ls=":", lw=1)
            high = max(high, clean * 1.05)
        for y, technique in enumerate(view.order):
            mean, sd, flagged = means[technique], sds[technique], view.barred(technique, metric)
            ax.barh(y, min(mean, high), color=view.colour(technique, metric), hatch=HATCH if flagged else None,
                    edgecolor="white" if flagged else None, height=0.7)  # fmt: skip
            if mean > high:
                clipped = True
                ax.text(high * 0.98, y, f"{number(metric, mean)} ▸", ha="right", va="center", fontsize=8,
                        bbox={"facecolor": "white", "edgecolor": "none", "pad": 1})  # fmt: skip
                continue
            if flagged and mean < 0.15 * high:  # too short a bar to read: its value beside it
                ax.text(mean + sd + 0.02 * high, y, number(metric, mean), ha="left", va="center", fontsize=8)
            if sd > 0:
                ax.errorbar(mean, y, xerr=sd, color="#333333", capsize=3, lw=1)
        ax.set_xlim(0, high)
        ax.set_yticks(range(n), [t + " (reference)" * view.is_reference(t) for t in view.order])
        ax.set_ylim(n - 0.4, -0.6)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.set_title(SPECS[metric].title(), fontsize=10)
    handles = [Line2D([], [], color="black", ls="--", label="accuracy on clean images"),
               Line2D([], [], color="black", ls=":", label="chance")]  # fmt: skip
    if view.any_flagged:
        handles.insert(0, Patch(facecolor=FLAGGED, hatch=HATCH, edgecolor="white", label="flagged on this metric"))
    if clipped:
        handles.append(Line2D([], [], ls="", marker=">", color="black", label="off the scale: value printed"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False, fontsize=9)
    fig.suptitle(f"{view.group.label}: metrics per technique (mean ± 1 sd over seeds)", fontsize=11)
    return Drawn(
        fig,
        f"metrics_{view.group.stem}",
        f"{view.group.label}: each metric per technique (bars: means over seeds; whiskers: ± 1 sd, none for one "
        "seed). Grey hatched: flagged on that metric, no claim (the reasons stand under the results table); the "
        "scale leaves flagged bars out, and a value beyond it is printed.",
    )


def pareto_front(points: pd.DataFrame) -> pd.DataFrame:
    """Points not dominated by another with lower MSE and higher accuracy, by increasing MSE."""
    ordered = points.sort_values(["mse", "accuracy"], ascending=[True, False])
    front, best = [], -np.inf
    for index, accuracy in ordered["accuracy"].items():
        if accuracy > best:
            front.append(index)
            best = accuracy
    return ordered.loc[front]


def accuracy_vs_mse(view: View) -> Drawn:
    """Downstream accuracy against MSE, one marker per technique, the Pareto front of the unflagged ones."""
    stats = view.ok.groupby("technique", sort=False)[["mse", "accuracy"]].agg(["mean", "std"]).fillna(0)
    mean = pd.DataFrame({m: stats[(m, "mean")] for m in ("mse", "accuracy")}).loc[view.order]
    sd = pd.DataFrame({m: stats[(m, "std")] for m in ("mse", "accuracy")}).loc[view.order]
    clean = float(view.ok["accuracy_clean"].mean())
    scale = [t for t in view.order if not view.barred(t, "mse", "accuracy")] or view.order
    xlim = span(
        list(mean.loc[scale, "mse"] - sd.loc[scale, "mse"]), list(mean.loc[scale, "mse"] + sd.loc[scale, "mse"])
    )
    lows, highs = (
        list(mean.loc[scale, "accuracy"] - sd.loc[scale, "accuracy"]),
        list(mean.loc[scale, "accuracy"] + sd.loc[scale, "accuracy"]),
    )
    near = clean - max(highs) <= max(highs) - min(lows)  # the clean ceiling joins the axis when it is near the points
    ylim = span(lows, [*highs, clean] if near else highs)
    fig, ax = plt.subplots(figsize=(8, 5.8), layout="constrained")
    for technique in view.order:
        x, y = mean.at[technique, "mse"], mean.at[technique, "accuracy"]
        flagged = view.barred(technique, "mse", "accuracy")
        inside = xlim[0] <= x <= xlim[1] and ylim[0] <= y <= ylim[1]
        label = view.name(technique, "mse", "accuracy")
        if not inside:
            label += f": off the axes (MSE {number('mse', x)}, accuracy {y:.3f})"
        colour = view.colour(technique, "mse", "accuracy")
        ax.errorbar(x if inside else np.nan, y if inside else np.nan, xerr=sd.at[technique, "mse"],
                    yerr=sd.at[technique, "accuracy"], fmt=view.marker(technique), ms=7, capsize=3, color=colour,
                    mfc="white" if flagged else colour, label=label)  # fmt: skip
    unflagged = [t for t in view.order if not view.barred(t, "mse", "accuracy")]
    if unflagged:  # the front of the techniques a claim may rest on
        front = pareto_front(mean.loc[unflagged])
        ax.step(front["mse"], front["accuracy"], where="post", color="grey", ls="--", lw=1)
        ax.scatter(front["mse"], front["accuracy"], s=260, facecolors="none", edgecolors="grey", label="Pareto front")
    ceiling = f"accuracy on clean images ({clean:.3f})" + ("" if near else ", above the axes")
    ax.axhline(clean, color="black", ls=":", lw=1, label=ceiling)
    ax.set(
        xlim=xlim, ylim=ylim, xlabel="MSE (lower is better)", ylabel="accuracy on reconstructions (higher is better)"
    )
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    ax.set_title(view.group.label, fontsize=11)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    return Drawn(
        fig,
        f"accuracy_vs_mse_{view.group.stem}",
        f"{view.group.label}: downstream accuracy against MSE (means over seeds, whiskers ± 1 sd); the dashed line "
        "joins the unflagged techniques no other beats on both. Hollow grey: flagged; a flagged technique off "
        "the axes is named in the legend with its values.",
    )


def paired_differences(view: View) -> Drawn | None:
    """Each tested technique minus the baseline, per metric, with its 95 % interval; hollow: not significant."""
    tested = view.stats[(view.stats["note"] == "") & view.stats["metric"].isin(STAT_METRICS)]
    if tested.empty:
        return None
    metrics = list(dict.fromkeys(tested["metric"]))
    techniques = [t for t in view.order if t in set(tested["technique"])]
    columns = min(3, len(metrics))
    rows = -(-len(metrics) // columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.7 * columns + 1.6, 0.6 + rows * (0.9 + 0.42 * len(techniques))),
                             sharey=True, squeeze=False, layout="constrained")  # fmt: skip
    for ax in axes.flat[len(metrics) :]:
        ax.set_visible(False)
    for ax, metric in zip(axes.flat, metrics):
        part = tested[tested["metric"] == metric].set_index("technique")
        for technique in part.index:
            r, y = part.loc[technique], techniques.index(technique)
            error = (
                None
                if pd.isna(r["diff_low"])
                else [[r["diff_mean"] - r["diff_low"]], [r["diff_high"] - r["diff_mean"]]]
            )
            colour = view.colours[technique]
            ax.errorbar(r["diff_mean"], y, xerr=error, fmt=view.marker(technique), capsize=3, color=colour,
                        mfc=colour if r["significant"] else "white", ms=7)  # fmt: skip
        ax.axvline(0, color="grey", lw=1, ls="--")
        ax.margins(x=0.12)  # a marker at the end of the range stays inside the panel
        ax.set_yticks(range(len(techniques)), techniques)
        ax.set_ylim(len(techniques) - 0.5, -0.5)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4))
        ax.set_title(f"Δ {SPECS[metric].title()}", fontsize=10)
    baseline = view.ok.loc[view.ok["role"] == "baseline", "technique"].iloc[0]
    handles = [
        Line2D([], [], ls="", marker="o", color="#333333", label=f"real (Holm-adjusted p < {ALPHA})"),
        Line2D([], [], ls="", marker="o", color="#333333", mfc="white", label="not significant at the seeds run"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    fig.suptitle(f"{view.group.label}: each technique minus {baseline} on the same seeds", fontsize=11)
    left = view.stats[(view.stats["note"] != "") & (view.stats["technique"] != baseline)]
    untested = dict.fromkeys(f"{t} ({n})" for t, n in zip(left["technique"], left["note"]))
    skipped = "; ".join(untested)
    return Drawn(
        fig,
        f"paired_differences_{view.group.stem}",
        f"{view.group.label}: each technique minus {baseline} on the seeds both ran (mean difference, whiskers: "
        f"95 % t-interval); filled: real (Holm-adjusted p < {ALPHA}), hollow: not significant at the seeds run."
        + (f" Not tested: {skipped}." if skipped else "")
        + (view.time_caveat() if "train_seconds" in metrics else ""),
    )


def history_frame(cells: list[Cell]) -> pd.DataFrame:
    """Every epoch record of the cells, with the kind of loss and whether the epoch ran at full image size."""
    records = []
    for cell in cells:
        history = read_history(cell.folder / "history.json")
        kind = "own loss" if cell.own_loss else f"{cell.loss} loss"
        last = history[-1].get("phase") if history else None
        records += [
            {"technique": cell.technique, "seed": cell.seed, "loss": kind, "full": at_full_size(h, cell, last), **h}
            for h in history
        ]
    return pd.DataFrame(records)


def training_curves(view: View, cells: list[Cell]) -> Drawn | None:
    """Test loss per epoch (mean over seeds, ± 1 sd), one panel per kind of loss (each on its own scale)."""
    history = history_frame(cells)
    if history.empty:
        return None
    kinds = list(dict.fromkeys(history["loss"]))
    fig, axes = plt.subplots(1, len(kinds), figsize=(4.8 * len(kinds) + 2.8, 4.2), squeeze=False, layout="constrained")
    for ax, kind in zip(axes[0], kinds):
        part = history[history["loss"] == kind]
        for technique in [t for t in view.order if t in set(part["technique"])]:
            mine = part[part["technique"] == technique]
            line = mine.groupby("epoch")["test_loss"].agg(["mean", "std"]).fillna(0)
            colour = view.colour(technique, "mse")
            ax.errorbar(line.index, line["mean"], yerr=line["std"], marker=view.marker(technique), ms=5, capsize=2,
                        color=colour, ls="--" if view.barred(technique, "mse") else "-",
                        label=view.name(technique, "mse"))  # fmt: skip
            reduced = line.loc[sorted(set(mine.loc[~mine["full"].astype(bool), "epoch"]))]
            ax.scatter(reduced.index, reduced["mean"], marker=view.marker(technique), s=30, facecolors="white",
                       edgecolors=colour, zorder=3)  # fmt: skip
        ax.set(yscale="log", xlabel="epoch", ylabel=f"test loss ({kind}; log scale)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"techniques trained on {kind}" if len(kinds) > 1 else view.group.label, fontsize=10)
    handles, labels = unique_legend(axes)
    if not history["full"].astype(bool).all():
        handles.append(Line2D([], [], ls="", marker="o", color="#333333", mfc="white"))
        labels.append("hollow: an epoch at a reduced image size (its loss at that size)")
    fig.legend(handles, labels, loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    if len(kinds) > 1:
        fig.suptitle(view.group.label, fontsize=11)
    return Drawn(
        fig,
        f"training_curves_{view.group.stem}",
        f"{view.group.label}: test loss per epoch, mean over seeds (whiskers ± 1 sd), each technique on the loss it "
        "trains on; techniques with their own loss get their own panel and scale. Hollow markers: epochs at a "
        "reduced image size. Dashed grey: flagged.",
    )


def unique_legend(axes: np.ndarray) -> tuple[list, list]:
    """Legend handles and labels of all axes, each label once."""
    seen: dict[str, object] = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(name, handle)
    return list(seen.values()), list(seen)


def time_to_quality(view: View, points: pd.DataFrame) -> Drawn | None:
    """Test MSE against cumulative training seconds (a linear time axis), one line per technique."""
    mine = points[points["group"] == view.group.label]
    if mine.empty:
        return None
    curves = mine.groupby(["technique", "epoch"], sort=False)[["seconds", "mse"]]
    means, sds = curves.mean().reset_index(), curves.std().fillna(0).reset_index()
    scale = [t for t in view.order if not view.barred(t, "mse") and t in set(means["technique"])]
    kept = means[means["technique"].isin(scale)] if scale else means
    ylim = span(list(kept["mse"]), list(kept["mse"]), log=True)
    fig, ax = plt.subplots(figsize=(8, 5.4), layout="constrained")
    for technique in [t for t in view.order if t in set(means["technique"])]:
        line = means[means["technique"] == technique]
        spread = sds.loc[line.index, "mse"]
        flagged = view.barred(technique, "mse")
        inside = line["mse"].between(*ylim)
        label = view.name(technique, "mse")
        if not inside.all():
            label += f": off the axis (MSE {number('mse', float(line['mse'].iloc[-1]))})"
        ax.errorbar(line["seconds"].where(inside), line["mse"].where(inside), yerr=spread.where(inside),
                    marker=view.marker(technique), ms=5, capsize=2, color=view.colour(technique, "mse"),
                    ls="--" if flagged else "-", label=label)  # fmt: skip
    ax.set(yscale="log", ylim=ylim, xlim=(0, float(means["seconds"].max()) * 1.05 or 1.0))
    ax.set(xlabel="training seconds so far (evaluation excluded)", ylabel="test MSE (log scale; lower is better)")
    ax.set_title(view.group.label, fontsize=11)
    fig.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=9)
    missing = [t for t in view.order if t not in set(means["technique"])]
    return Drawn(
        fig,
        f"time_to_quality_{view.group.stem}",
        f"{view.group.label}: time to quality, the test-set pixel MSE at full image size after each epoch against "
        "the training seconds spent so far (linear time axis; means over seeds, whiskers ± 1 sd; a fit-only "
        "technique is one point). Where a history predates the recorded test MSE, the test loss stands in for "
        "epochs at full size of cells trained on plain pixel MSE, and the rest is left out. Dashed grey: flagged."
        + (f" Not plotted (no per-epoch pixel MSE in their histories): {', '.join(missing)}." if missing else "")
        + view.time_caveat(),
    )
