"""Report figures (matplotlib's Agg backend, seaborn's style): one set per comparison group, saved as PNG and PDF
without dates so reruns match. Flagged techniques are drawn apart (grey, hatched or hollow) and never set a
scale; a value off the scale is printed instead. ``text_overlaps`` checks that no two labels collide."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.axis
import matplotlib.pyplot as plt
import seaborn as sns
from matplotlib.text import Text

from aebench.files import atomic_write, safe_folder

PNG_META = {"Software": None}
PDF_META = {"Creator": None, "Producer": None, "CreationDate": None}
FLAGGED = "#a0a0a0"  # every flagged technique's colour
PNG_DPI = 120


@dataclass(frozen=True)
class Figure:
    """A saved figure: its path relative to the report folder (without suffix) and a caption."""

    stem: str
    caption: str


@dataclass(frozen=True)
class Drawn:
    """A figure drawn but not yet saved: the matplotlib figure, its file name and its caption."""

    fig: plt.Figure
    name: str
    caption: str


def save(drawn: Drawn, out: Path) -> Figure:
    """Write ``figures/<name>.png`` and ``.pdf`` (atomically, never through a link) and close the figure."""
    folder = safe_folder(out, out / "figures")
    fig = drawn.fig
    try:
        atomic_write(
            folder / f"{drawn.name}.png", lambda tmp: fig.savefig(tmp, format="png", dpi=PNG_DPI, metadata=PNG_META)
        )
        atomic_write(folder / f"{drawn.name}.pdf", lambda tmp: fig.savefig(tmp, format="pdf", metadata=PDF_META))
    finally:
        plt.close(fig)
    return Figure(f"figures/{drawn.name}", drawn.caption)


def palette(techniques: list[str]) -> dict[str, tuple]:
    """One fixed colour per technique, shared by every figure of the report (tab10 without its grey, which
    marks flagged techniques; husl beyond nine)."""
    tab = [c for i, c in enumerate(sns.color_palette("tab10", 10)) if i != 7]
    colours = tab if len(techniques) <= len(tab) else sns.color_palette("husl", len(techniques))
    return dict(zip(techniques, colours))


def style() -> object:
    """The context every figure is drawn in."""
    return sns.axes_style("whitegrid")


def tick_labels(axis: matplotlib.axis.Axis) -> list[Text]:
    """The tick labels an axis draws: those of the ticks inside its view interval."""
    low, high = sorted(axis.get_view_interval())
    slack = (high - low) * 1e-9
    return [
        label for loc, label in zip(axis.get_ticklocs(), axis.get_ticklabels()) if low - slack <= loc <= high + slack
    ]


def drawn_texts(fig: plt.Figure) -> list[Text]:
    """Every non-empty text the figure draws: titles, axis and tick labels, offsets, legends, annotations."""
    fig.canvas.draw()
    texts: list[Text] = list(fig.texts)
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        if ax.axison:
            texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
            texts += [ax.xaxis.get_offset_text(), ax.yaxis.get_offset_text()]
            texts += [*tick_labels(ax.xaxis), *tick_labels(ax.yaxis)]
        texts += list(ax.texts)
        if ax.get_legend():
            texts += [*ax.get_legend().get_texts(), ax.get_legend().get_title()]
    for legend in fig.legends:
        texts += [*legend.get_texts(), legend.get_title()]
    unique = list({id(t): t for t in texts}.values())
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def text_overlaps(fig: plt.Figure, slack: float = 1.0) -> list[str]:
    """Pairs of drawn texts whose boxes overlap, and texts reaching outside the figure (as readable strings)."""
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), t.get_window_extent(renderer).expanded(1, 1)) for t in drawn_texts(fig)]
    frame = fig.bbox
    problems = [
        f"{text!r} reaches outside the figure"
        for text, box in boxes
        if box.x0 < frame.x0 - slack
        or box.x1 > frame.x1 + slack
        or box.y0 < frame.y0 - slack
        or box.y1 > frame.y1 + slack
    ]
    for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2):
        width = min(box_a.x1, box_b.x1) - max(box_a.x0, box_b.x0)
        height = min(box_a.y1, box_b.y1) - max(box_a.y0, box_b.y0)
        if width > slack and height > slack:
            problems.append(f"{a!r} overlaps {b!r}")
    return problems
