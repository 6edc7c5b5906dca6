"""``aebench report``: every table and figure regenerated from results folders; never retrains, needs no data.

Output (deterministic for the same results and command): ``README.md``, ``report.tex`` (booktabs, builds with
pdflatex), ``tables/*.csv`` (the numbers behind every table), ``figures/*.png|pdf`` (+ training-snapshot GIFs)
and the manifest that says which results they came from (``manifest.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from aebench.errors import UserError
from aebench.files import read_text, safe_folder, write_text
from aebench.reporting.cellfiles import Cell, group_cells, reason, skipped
from aebench.reporting.conditions import text_of, time_caveat
from aebench.reporting.curves import curves
from aebench.reporting.document import Contents, Section, latex, markdown
from aebench.reporting.figures import Drawn, palette, save, style
from aebench.reporting.findings import findings
from aebench.reporting.groups import Group, earlier_rows, groups, rows_of
from aebench.reporting.images import first_seed_cells, latents, reconstructions, samples_of, snapshots
from aebench.reporting.manifest import claim, finish
from aebench.reporting.plots import (
    View,
    accuracy_vs_mse,
    metric_bars,
    paired_differences,
    time_to_quality,
    training_curves,
)
from aebench.reporting.rows import Loaded, load
from aebench.reporting.sanity import CEILING_SHARE, CHANCE_SHARE, LOSSLESS_MSE, MIN_SEEDS, SPREAD_FLOOR, sanity_flags
from aebench.reporting.statistics import baseline_of, seed_statistics
from aebench.reporting.study import study_comparison
from aebench.reporting.tables import problems_table, results_table, statistics_table
from aebench.results.schema import METRIC_DEFINITIONS
from aebench.results.settings import cell_config, plural
from aebench.results.summary import finished

NOTES_FILE = "NOTES.md"  # beside results.jsonl: how the run was made (command, machine, total time), by its author
NOTES_LIMIT = 20_000  # characters shown from one notes file
NOTES_BYTES = 2**20  # a larger notes file is skipped


def run_notes(folders: list[Path]) -> list[str]:
    """The ``NOTES.md`` of each results folder that has one (plain text, read as such; nothing is executed; a link,
    a non-regular or an oversized file is skipped with a warning)."""
    notes = []
    for folder in folders:
        path = Path(folder) / NOTES_FILE
        try:
            notes.append(read_text(path, NOTES_BYTES)[:NOTES_LIMIT].strip())
        except FileNotFoundError:
            continue
        except (UserError, OSError) as exc:
            skipped(path, reason(path, exc))
    return notes


def distinct(frame: pd.DataFrame, column: str) -> str:
    """The column's distinct values, sorted; whole numbers printed as integers."""
    values = frame[column].dropna() if column in frame else pd.Series(dtype=object)
    texts = {text_of(v) for v in values}
    return ", ".join(sorted(texts, key=lambda t: (len(t), t))) or "unknown"


def compute(frame: pd.DataFrame) -> str:
    """Total training and evaluation seconds of the ok rows (classifier training and data loading not included)."""
    ok = frame[frame["status"] == "ok"]
    train, evaluation = ok["train_seconds"].sum(), ok["eval_seconds"].sum()
    return (
        f"{train + evaluation:.0f} s over {len(ok)} cells ({train:.0f} s training, {evaluation:.0f} s evaluation; "
        "classifier training and data loading not included)"
    )


SUPERSEDED = {
    "config": "of an earlier config of a cell and setting, replaced by its latest config",
    "recipe": "of another recipe of a technique than its latest row's, left out so recipes are never averaged",
}


def superseded_note(loaded: Loaded) -> list[tuple[str, str]]:
    counts = {why: sum(r["left_out"] == why for r in loaded.superseded) for why in SUPERSEDED}
    parts = [f"{plural(n, 'finished row')} {SUPERSEDED[why]}" for why, n in counts.items() if n]
    if not parts:
        return []
    return [("earlier rows not shown", "; ".join(parts) + " (each results table counts its own)")]


def filled_note(loaded: Loaded) -> list[tuple[str, str]]:
    if not loaded.filled:
        return []
    facts = ", ".join(f"{name} ({n} rows)" for name, n in sorted(loaded.filled.items()))
    return [("technique facts", f"{facts} taken from the technique registry at report time (the rows predate them)")]


def stamp(loaded: Loaded, folders: list[Path], command: str) -> list[tuple[str, str]]:
    """What produced these results: versions, commits, devices, dates, and the command that made this report."""
    frame = loaded.frame
    finished_at = sorted(str(v) for v in frame["finished_at"].dropna()) if "finished_at" in frame else []
    return [
        ("aebench version", distinct(frame, "aebench_version")),
        ("git commit", distinct(frame, "git_commit")),
        ("torch", distinct(frame, "torch_version")),
        ("device", distinct(frame, "device")),
        ("precision", distinct(frame, "precision")),
        ("compute", compute(frame)),
        ("training images", distinct(frame, "n_train")),
        ("test images", distinct(frame, "n_test")),
        ("results dated", f"{finished_at[0]} to {finished_at[-1]}" if finished_at else "unknown"),
        *filled_note(loaded),
        *superseded_note(loaded),
        ("results folders", ", ".join(str(f) for f in folders)),
        ("report command", command),
    ]


def section(
    group: Group, frame: pd.DataFrame, cells: list[Cell], points: pd.DataFrame, superseded: list[dict] | None = None
) -> Section | None:
    """A group's flags, tables and findings (figures come later); ``superseded``: the rows earlier configs left."""
    rows = rows_of(frame, group)
    flags = sanity_flags(finished(rows), samples_of(first_seed_cells(cells, group)))
    table = results_table(group, rows, flags, earlier_rows(superseded or [], group))
    if table is None:
        return None
    stats = seed_statistics(rows, flags)
    return Section(
        group,
        table,
        statistics_table(group, stats, baseline_of(finished(rows)), time_caveat(finished(rows))),
        findings(group, rows, stats, points, flags),
        flags,
    )


def drawn(s: Section, frame: pd.DataFrame, cells: list[Cell], points: pd.DataFrame, colours: dict) -> list[Drawn]:
    """The section's figures, drawn (not yet saved), in the order the report shows them."""
    ok = finished(rows_of(frame, s.group))
    order = list(s.table.numbers["technique"].iloc[:-1])  # the table's order, less the clean-images row
    view = View(s.group, ok, s.flags, colours, order, seed_statistics(rows_of(frame, s.group), s.flags))
    mine = [c for c in cells if c.group == s.group]
    firsts = first_seed_cells(cells, s.group)
    with style():
        figures = [
            metric_bars(view),
            accuracy_vs_mse(view),
            paired_differences(view),
            training_curves(view, mine),
            time_to_quality(view, points),
            reconstructions(s.group, firsts, s.flags, order) if firsts else None,
            latents(s.group, firsts) if firsts else None,
        ]
    return [f for f in figures if f is not None]


def technique_configs(cells: list[Cell], group: Group) -> dict[str, dict]:
    """Technique -> the resolved config of one of its cells in the group (settings its seeds share)."""
    return {c.technique: cell_config(c.folder) for c in cells if c.group == group}


def definitions(sections: list[Section]) -> list[str]:
    """How every number was computed, true for these rows (the metric definitions per version present)."""
    by_version: dict[int | None, list[str]] = {}
    for s in sections:
        by_version.setdefault(s.group.setting.metric_version, []).append(s.group.label)
    lines = [
        "Pixel scale: every metric is computed on pixels in [0, 1], the model output clamped to [0, 1], against the "
        "clean test images (each table states how many: the full test split or a seeded subset). MAE, MSE, PSNR "
        "and SSIM are means over test images; PSNR in dB for a peak of 1, capped at 100 dB. Accuracy: the "
        "downstream classifier, trained once on the clean training images, applied to the reconstructions; its "
        "accuracy on the original images is the ceiling row (one classifier serves every technique and seed, so it "
        "is one measurement, counted once). Train time: wall-clock seconds of training only "
        "(images/s is left out for a fit without training epochs)."
    ]
    for version, labels in by_version.items():
        where = ", ".join(labels)
        if version in METRIC_DEFINITIONS:
            lines.append(f"Metric version {version} ({where}): {METRIC_DEFINITIONS[version]}.")
        else:
            lines.append(
                f"Metric version not recorded ({where}): the rows predate metric versions, so their SSIM "
                "definition is not known from the rows (see how the results were produced, below); SSIM is "
                "comparable within a table only."
            )
    lines += [
        "Cells show mean ± sd over seeds (sd omitted for one seed). Bold: the best per column among the techniques "
        "that may be ranked on it; a reference (a yardstick such as a linear floor) and a flagged technique never "
        "are. Rows compare only within a table: one experiment, dataset and setting (length, image counts, size, "
        "latent, corruption, classifier, metric version); a technique's own recipe (learning rate, loss, its "
        "options) is not a setting. Nor are the measuring conditions (device, precision, torch threads per cell, "
        "cells run at once): a table whose rows mix a device or precision says so under it, and a time comparison "
        "of rows timed under different conditions, or rows that do not record them, is marked not like-for-like "
        "(or not known to be), and ranks nothing: no train time or images/s in bold, no winner at equal time.",
        "Sanity flags, computed from the rows and the saved test images: ignores its input (MSE no better than "
        f"outputting the mean test image, or reconstructions varying under {SPREAD_FLOOR} times as much as the "
        f"images); accuracy near chance (keeping under {CHANCE_SHARE:.0%} of the classifier's margin over chance); "
        f"weak classifier (clean accuracy below {CEILING_SHARE:.0%} of the way from chance to perfect: accuracy "
        "ranks nothing); lossless reference (a latent at least the data's rank, or an MSE below "
        f"{LOSSLESS_MSE:g}); too few seeds (under {MIN_SEEDS}, no test). Differences from the baseline are tested "
        "per metric over the unflagged techniques and Holm-adjusted for their number.",
    ]
    return lines


def empty_pairs(frame: pd.DataFrame, found: list[Group]) -> list[str]:
    covered = {(g.experiment, g.dataset) for g in found}
    pairs = dict.fromkeys(zip(frame["experiment"], frame["dataset"]))
    return [f"{dataset} ({experiment})" for experiment, dataset in pairs if (experiment, dataset) not in covered]


def write_report(
    folders: list[Path],
    out: Path,
    command: str,
    facts: Mapping[str, Mapping[str, Any]] | None = None,
    force: bool = False,
) -> Path:
    """Regenerate ``out/`` from the results folders; returns the path of ``out/README.md``.

    ``facts``: technique -> its registry facts (role, own_loss, ...), for rows written before rows carried
    them. ``force``: write even where ``out`` holds another results' report (see ``manifest.py``)."""
    folders = [Path(f) for f in folders]
    loaded = load(folders, facts)
    frame = loaded.frame
    if frame.empty:
        raise UserError(f"{', '.join(map(str, folders))}: results.jsonl has no rows yet (run an experiment first)")
    previous = claim(out, folders, force)
    safe_folder(out, out / "tables")
    found = groups(frame)
    cells = group_cells(frame, found)
    points = curves(cells)
    sections = [s for g in found if (s := section(g, frame, cells, points, loaded.superseded))]
    problems = problems_table(frame)
    comparisons = [
        c
        for s in sections
        if (c := study_comparison(s.group, rows_of(frame, s.group), technique_configs(cells, s.group), s.flags))
    ]
    tables = [t for s in sections for t in (s.table, s.statistics) if t] + [t for t in (problems,) if t]
    tables += [t for c in comparisons for t in c.tables()]
    for table in tables:
        write_text(out / "tables" / f"{table.name}.csv", table.numbers.to_csv(index=False))
    techniques = list(dict.fromkeys(t for s in sections for t in s.table.numbers["technique"].iloc[:-1]))
    colours = palette(techniques)
    gifs = []
    for s in sections:
        s.figures = [save(d, out) for d in drawn(s, frame, cells, points, colours)]
        gifs += snapshots(first_seed_cells(cells, s.group), out)
    contents = Contents(
        sections,
        empty_pairs(frame, found),
        problems,
        comparisons,
        gifs,
        stamp(loaded, folders, command),
        command,
        run_notes(folders),
        definitions(sections),
    )
    write_text(out / "report.tex", latex(contents))
    readme = out / "README.md"
    write_text(readme, markdown(contents))
    written = [readme, out / "report.tex", *(out / "tables" / f"{t.name}.csv" for t in tables)]
    written += [out / f"{f.stem}.{ext}" for s in sections for f in s.figures for ext in ("png", "pdf")]
    written += [out / g.stem for g in gifs]
    finish(out, previous, folders, written)
    return readme
