"""Report figures (seaborn on matplotlib's Agg backend), saved as PNG and PDF without dates so reruns match."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from aebench.errors import UserError
from aebench.files import atomic_write, read_bytes, safe_folder, write_bytes
from aebench.report.cellfiles import read_arrays, read_history, reason, skipped
from aebench.report.statistics import ALPHA, BASELINE, seed_statistics
from aebench.report.tables import REFERENCE_TECHNIQUES, Group, rows_of
from aebench.results.schema import QUALITY, SPECS
from aebench.results.summary import finished

MAX_LATENT_POINTS = 5000
GIF_LIMIT = 64 * 2**20  # bytes of a snapshots.gif copied into the report
SAMPLE_ARRAYS = {"input": 4, "target": 4, "output": 4}  # (N, C, H, W) in [0, 1]
PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}


@dataclass(frozen=True)
class Figure:
    """A saved figure: its path relative to the report folder (without suffix) and a caption."""

    stem: str
    caption: str


@dataclass(frozen=True)
class Cell:
    """One finished cell and its folder of artefacts."""

    group: Group
    technique: str
    seed: int
    folder: Path
    train_seconds: float
    mse: float


def save(fig: plt.Figure, out: Path, name: str, caption: str) -> Figure:
    """Write ``figures/<name>.png`` and ``.pdf`` (atomically) and close the figure."""
    folder = safe_folder(out, out / "figures")
    try:
        atomic_write(folder / f"{name}.png", lambda tmp: fig.savefig(tmp, format="png", dpi=120, metadata=PNG_META))
        atomic_write(folder / f"{name}.pdf", lambda tmp: fig.savefig(tmp, format="pdf", metadata=PDF_META))
    finally:
        plt.close(fig)
    return Figure(f"figures/{name}", caption)


def palette(techniques: list[str]) -> dict[str, tuple]:
    """One fixed colour per technique, shared by every figure."""
    return dict(zip(techniques, sns.color_palette("tab10" if len(techniques) <= 10 else "husl", len(techniques))))


def labelled(ok: pd.DataFrame, groups: list[Group]) -> pd.DataFrame:
    """``ok`` rows with a ``group`` column holding each row's table label."""
    labels = {(g.experiment, g.dataset): g.label for g in groups}
    return ok.assign(group=[labels[k] for k in zip(ok["experiment"], ok["dataset"])])


def metric_bars(ok: pd.DataFrame, colours: dict, out: Path) -> Figure:
    groups = list(dict.fromkeys(ok["group"]))
    panel_width = max(3.0, 0.3 * len(groups) * len(colours))
    fig, axes = plt.subplots(2, 3, figsize=(3 * panel_width, 6.5), layout="constrained")
    for ax, metric in zip(axes.flat, QUALITY):
        sns.barplot(
            data=ok,
            x="group",
            y=metric,
            hue="technique",
            order=groups,
            hue_order=list(colours),
            palette=colours,
            errorbar="sd",
            capsize=0.1,
            ax=ax,
            legend=False,
        )
        ax.set(title=SPECS[metric].title(), xlabel="", ylabel="")
    legend_ax = axes.flat[-1]
    legend_ax.axis("off")
    legend_ax.legend(
        [plt.Rectangle((0, 0), 1, 1, color=c) for c in colours.values()],
        list(colours),
        title="technique",
        loc="center",
        frameon=False,
    )
    return save(
        fig,
        out,
        "metrics",
        "Reconstruction and downstream metrics per dataset; bars are means over seeds, "
        "whiskers ± 1 sd (no whisker: one seed).",
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


def accuracy_vs_mse(ok: pd.DataFrame, colours: dict, out: Path) -> Figure:
    labels = list(dict.fromkeys(ok["group"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(5.5 * len(labels), 4.5), squeeze=False, layout="constrained")
    for ax, label in zip(axes[0], labels):
        stats = ok[ok["group"] == label].groupby("technique", sort=False)[["mse", "accuracy"]].agg(["mean", "std"])
        points = pd.DataFrame({"mse": stats[("mse", "mean")], "accuracy": stats[("accuracy", "mean")]}).dropna()
        for technique, row in stats.iterrows():
            ax.errorbar(
                row[("mse", "mean")],
                row[("accuracy", "mean")],
                xerr=row[("mse", "std")],
                yerr=row[("accuracy", "std")],
                fmt="o",
                ms=7,
                capsize=3,
                color=colours[technique],
                label=technique,
            )
            ax.annotate(
                technique,
                (row[("mse", "mean")], row[("accuracy", "mean")]),
                textcoords="offset points",
                xytext=(5, 5),
                fontsize=8,
            )
        front = pareto_front(points)
        ax.step(front["mse"], front["accuracy"], where="post", color="grey", ls="--", lw=1)
        ax.scatter(front["mse"], front["accuracy"], s=220, facecolors="none", edgecolors="grey", label="Pareto front")
        ax.set(title=label, xlabel="MSE (lower is better)", ylabel="classifier accuracy on reconstructions")
    fig.legend(*unique_legend(axes), loc="outside right center", frameon=False)
    return save(
        fig,
        out,
        "accuracy_vs_mse",
        "Downstream accuracy against MSE (means, whiskers ± 1 sd); the dashed "
        "line joins the techniques no other beats on both.",
    )


def unique_legend(axes: np.ndarray) -> tuple[list, list]:
    """Legend handles and labels of all axes, each label once."""
    seen: dict[str, object] = {}
    for ax in axes.flat:
        for handle, name in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(name, handle)
    return list(seen.values()), list(seen)


def training_curves(cells: list[Cell], colours: dict, out: Path) -> Figure | None:
    records = []
    for cell in cells:
        records += [
            {"group": cell.group.label, "technique": cell.technique, "seed": cell.seed, **h}
            for h in read_history(cell.folder / "history.json")
        ]
    history = pd.DataFrame(records)
    if history.empty or "test_loss" not in history:
        return None
    labels = list(dict.fromkeys(history["group"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(5.5 * len(labels), 4), squeeze=False, layout="constrained")
    for ax, label in zip(axes[0], labels):
        part = history[history["group"] == label]
        sns.lineplot(
            data=part,
            x="epoch",
            y="test_loss",
            hue="technique",
            errorbar="sd",
            marker="o",
            ms=4,
            palette={t: colours[t] for t in part["technique"].unique()},
            ax=ax,
            legend=False,
        )
        ax.set(title=label, ylabel="test loss (each technique's own loss)", yscale="log")
        ax.xaxis.get_major_locator().set_params(integer=True)
    techniques = list(dict.fromkeys(history["technique"]))
    handles = [plt.Line2D([], [], color=colours[t], marker="o") for t in techniques]
    fig.legend(handles, techniques, loc="outside right center", frameon=False)
    return save(
        fig,
        out,
        "training_curves",
        "Test loss per epoch, mean over seeds (band ± 1 sd). Each technique "
        "plots its own training loss, so feature-loss curves sit higher by design.",
    )


def time_to_quality(points: pd.DataFrame, colours: dict, out: Path) -> Figure | None:
    """Test MSE against cumulative training seconds, one line per technique (mean over seeds per epoch)."""
    if points.empty:
        return None
    labels = list(dict.fromkeys(points["group"]))
    fig, axes = plt.subplots(1, len(labels), figsize=(5.5 * len(labels), 4), squeeze=False, layout="constrained")
    for ax, label in zip(axes[0], labels):
        part = points[points["group"] == label].groupby(["technique", "epoch"], sort=False)[["seconds", "mse"]]
        means, sds = part.mean().reset_index(), part.std().reset_index()
        for technique, line in means.groupby("technique", sort=False):
            spread = sds.loc[line.index, "mse"]
            ax.errorbar(line["seconds"], line["mse"], yerr=spread, marker="o", ms=4, capsize=2,
                        color=colours[technique], label=technique)  # fmt: skip
        ax.set(title=label, xlabel="training seconds (evaluation excluded)", ylabel="test MSE (lower is better)")
        ax.set_yscale("log")
    fig.legend(*unique_legend(axes), loc="outside right center", frameon=False)
    return save(
        fig,
        out,
        "time_to_quality",
        "Time to quality: test-set pixel MSE at full image size after each epoch against the training seconds "
        "spent so far (mean over seeds, whiskers ± 1 sd; a fit-only technique such as PCA is one point). Where a "
        "history predates the recorded test MSE, the test loss stands in for full-size epochs of cells trained on "
        "plain pixel MSE; cells with their own loss (feature loss) and reduced-size epochs are then left out.",
    )


def paired_differences(ok: pd.DataFrame, groups: list[Group], colours: dict, out: Path) -> Figure | None:
    """Each technique minus the baseline on the same seeds, with 95 % CIs; hollow markers are not significant."""
    parts = []
    for group in groups:
        table = seed_statistics(rows_of(ok, group))
        if not table.empty:
            parts.append(table[table["paired_seeds"] > 0].assign(group=group.label))
    found = pd.concat(parts) if parts else pd.DataFrame()
    if found.empty:
        return None
    metrics = list(dict.fromkeys(found["metric"]))
    labels = list(dict.fromkeys(found["group"]))
    columns = min(3, len(metrics))
    panels = [(label, metric) for label in labels for metric in metrics]
    height = 0.9 + 0.35 * found["technique"].nunique()
    fig, axes = plt.subplots(
        -(-len(panels) // columns), columns, figsize=(4.2 * columns, height * -(-len(panels) // columns)),
        squeeze=False, layout="constrained",
    )  # fmt: skip
    for ax in axes.flat[len(panels) :]:
        ax.axis("off")
    for ax, (label, metric) in zip(axes.flat, panels):
        part = found[(found["group"] == label) & (found["metric"] == metric)].reset_index(drop=True)
        for y, r in part.iterrows():
            error = [[r["diff_mean"] - r["diff_low"]], [r["diff_high"] - r["diff_mean"]]]
            ax.errorbar(r["diff_mean"], y, xerr=None if pd.isna(r["diff_low"]) else error, fmt="o", capsize=3,
                        color=colours[r["technique"]], mfc=colours[r["technique"]] if r["significant"] else "white")  # fmt: skip
        ax.axvline(0, color="grey", lw=1, ls="--")
        ax.set_yticks(range(len(part)), part["technique"])
        ax.set(title=f"{label}\nΔ {SPECS[metric].title()}", ylim=(-0.7, len(part) - 0.3))
        ax.title.set_fontsize(8)
    return save(
        fig,
        out,
        "paired_differences",
        f"Each technique minus the {BASELINE} on the same seeds (mean difference, whiskers: 95 % t-interval); "
        f"filled markers: significant (paired t-test p < {ALPHA}), hollow: not significant at the seeds run.",
    )


def train_time(ok: pd.DataFrame, colours: dict, out: Path) -> Figure:
    labels = list(dict.fromkeys(ok["group"]))
    fig, ax = plt.subplots(figsize=(7, 1 + 0.45 * ok["technique"].nunique() * len(labels)), layout="constrained")
    sns.barplot(
        data=ok, y="technique", x="train_seconds", hue="group", hue_order=labels, errorbar="sd", capsize=0.1, ax=ax
    )
    positive = ok["train_seconds"].dropna()
    if len(positive) and positive.min() > 0 and positive.max() / positive.min() > 100:
        ax.set_xscale("log")
    ax.set(xlabel="training time (s, lower is better)", ylabel="")
    ax.legend(title="dataset", frameon=False)
    return save(
        fig,
        out,
        "train_time",
        "Wall-clock training time per technique (mean over seeds, whiskers ± 1 sd; evaluation excluded).",
    )


def image_row(images: np.ndarray) -> np.ndarray:
    """(N, C, H, W) in [0, 1] -> one (H, N*(W+1), C) strip with one-pixel white gaps."""
    n, c, h, w = images.shape
    strip = np.ones((h, n * (w + 1) - 1, c), dtype=np.float32)
    for i, image in enumerate(images):
        strip[:, i * (w + 1) : i * (w + 1) + w] = image.transpose(1, 2, 0)
    return strip.clip(0, 1)


def reconstructions(group: Group, cells: list[Cell], out: Path) -> Figure | None:
    """Originals, the corrupted input where the experiment corrupts it, and each technique's reconstruction."""
    found = [(c.technique, read_arrays(c.folder / "samples.npz", SAMPLE_ARRAYS)) for c in cells]
    samples = {technique: arrays for technique, arrays in found if arrays is not None}
    if not samples:
        return None
    first = next(iter(samples.values()))
    rows = [("original", first["target"])]
    if group.corruption != "none":
        rows.append((f"input ({group.corruption})", first["input"]))
    rows += [(technique, s["output"]) for technique, s in samples.items()]
    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 1.1 * len(rows)), squeeze=False, layout="constrained")
    for ax, (name, images) in zip(axes[:, 0], rows):
        strip = image_row(images)
        ax.imshow(
            strip[..., 0] if strip.shape[-1] == 1 else strip, cmap="gray", vmin=0, vmax=1, interpolation="nearest"
        )
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(f"{group.label}: the same test images, seed {cells[0].seed}", fontsize=10)
    return save(
        fig,
        out,
        f"reconstructions_{group.stem}",
        f"{group.label}: test images, the input where corrupted, "
        "and each technique's reconstruction (output clamped to [0, 1]).",
    )


def latents(group: Group, cells: list[Cell], out: Path) -> Figure | None:
    """2-D latent codes of the test images, coloured by class, one panel per technique that saved them."""
    read = [(c.technique, read_arrays(c.folder / "latents.npz", {"z": 2, "labels": 1})) for c in cells]
    found = [(technique, arrays) for technique, arrays in read if arrays is not None]
    if not found:
        return None
    fig, axes = plt.subplots(1, len(found), figsize=(4.2 * len(found), 4), squeeze=False, layout="constrained")
    for ax, (technique, data) in zip(axes[0], found):
        z, labels = data["z"][:MAX_LATENT_POINTS], data["labels"][:MAX_LATENT_POINTS]
        sns.scatterplot(
            x=z[:, 0], y=z[:, 1], hue=labels.astype(int), palette="tab10", s=6, linewidth=0, ax=ax, legend=False
        )
        ax.set(title=technique, xlabel="z₁", ylabel="z₂")
    classes = sorted({int(label) for _, d in found for label in d["labels"][:MAX_LATENT_POINTS]})
    colours = dict(zip(classes, sns.color_palette("tab10", len(classes))))
    handles = [plt.Line2D([], [], color=colours[k], marker="o", ls="") for k in classes]
    fig.legend(handles, classes, title="class", loc="outside right center", frameon=False)
    return save(
        fig, out, f"latents_{group.stem}", f"{group.label}: 2-D latent codes of test images, coloured by class."
    )


def snapshots(cells: list[Cell], out: Path) -> list[Figure]:
    """Copy each technique's ``snapshots.gif`` (first seed) into ``figures/snapshots/``; a link, a non-regular or
    an oversized file is skipped with a warning."""
    copied = []
    for cell in cells:
        gif = cell.folder / "snapshots.gif"
        try:
            data = read_bytes(gif, GIF_LIMIT)
        except FileNotFoundError:
            continue
        except (UserError, OSError) as exc:
            skipped(gif, reason(gif, exc))
            continue
        name = f"{cell.group.stem}_{cell.technique}_seed{cell.seed}.gif"
        write_bytes(safe_folder(out, out / "figures" / "snapshots") / name, data)
        copied.append(
            Figure(
                f"figures/snapshots/{name}", f"{cell.group.label} / {cell.technique}: reconstructions during training"
            )
        )
    return copied


def first_seed_cells(cells: list[Cell], group: Group) -> list[Cell]:
    """One cell per technique of a group, at the smallest seed every technique has (else each one's smallest)."""
    mine = sorted((c for c in cells if c.group == group), key=lambda c: c.seed)
    seeds = (
        set.intersection(*({c.seed for c in mine if c.technique == t} for t in {c.technique for c in mine}))
        if mine
        else set()
    )
    picked: dict[str, Cell] = {}
    for cell in mine:
        if (not seeds or cell.seed == min(seeds)) and cell.technique not in picked:
            picked[cell.technique] = cell
    order = list(dict.fromkeys(c.technique for c in cells if c.group == group))
    return [picked[t] for t in order if t in picked]


def all_figures(
    frame: pd.DataFrame, groups: list[Group], cells: list[Cell], points: pd.DataFrame, out: Path
) -> tuple[list[Figure], list[Figure]]:
    """Every figure of the report: (static figures, training-snapshot GIFs)."""
    ok = labelled(finished(frame), groups)
    if ok.empty:
        return [], []
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.9):
        techniques = list(dict.fromkeys(ok["technique"]))
        colours = palette(
            [t for t in techniques if t not in REFERENCE_TECHNIQUES]
            + [t for t in techniques if t in REFERENCE_TECHNIQUES]
        )
        figures = [
            metric_bars(ok, colours, out),
            accuracy_vs_mse(ok, colours, out),
            paired_differences(ok, groups, colours, out),
            training_curves(cells, colours, out),
            time_to_quality(points, colours, out),
            train_time(ok, colours, out),
        ]
        gifs = []
        for group in groups:
            firsts = first_seed_cells(cells, group)
            if firsts:
                figures += [reconstructions(group, firsts, out), latents(group, firsts, out)]
                gifs += snapshots(firsts, out)
    return [f for f in figures if f is not None], gifs


def rows_cells(frame: pd.DataFrame, groups: list[Group], folders: dict[tuple, Path]) -> list[Cell]:
    """The ``ok`` cells whose folder exists, in row order."""
    cells = []
    for group in groups:
        for row in rows_of(frame, group).to_dict("records"):
            folder = folders.get((row["experiment"], row["dataset"], row["technique"], row["seed"]))
            if row["status"] == "ok" and folder is not None and folder.is_dir():
                cells.append(Cell(group, row["technique"], int(row["seed"]), folder, row["train_seconds"], row["mse"]))
    return cells
