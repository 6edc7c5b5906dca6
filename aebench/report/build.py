"""``aebench report``: every table and figure regenerated from results folders; never retrains, needs no data.

Output (deterministic for the same results and command): ``README.md``, ``report.tex`` (booktabs),
``tables/*.csv`` (the numbers behind every table) and ``figures/*.png|pdf`` (+ training-snapshot GIFs).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aebench.errors import UserError
from aebench.files import UnsafePath, inside, read_text, safe_folder, write_text
from aebench.report.cellfiles import reason, skipped
from aebench.report.curves import cell_config, curves
from aebench.report.figures import Cell, Figure, all_figures, rows_cells
from aebench.report.findings import findings
from aebench.report.study import STUDY_NOTE, StudyComparison, study_comparison
from aebench.report.study import latex as study_latex
from aebench.report.study import markdown as study_markdown
from aebench.report.tables import (
    Group,
    Table,
    escape_latex,
    groups,
    problems_table,
    results_table,
    rows_of,
    statistics_table,
    to_latex,
    to_markdown,
)
from aebench.results.schema import CELL_KEYS, cell_folder
from aebench.results.store import load_results, read_rows

PIXEL_SCALE = (
    "Pixel scale: every metric is computed on pixels in [0, 1], the model output clamped to [0, 1], against the clean "
    "test images of the full test split. PSNR in dB for a peak of 1 (capped at 100 dB); SSIM with an 11x11 Gaussian "
    "window (sigma 1.5), borders padded by reflection (torchmetrics). Accuracy: the reference classifier, trained on clean training images, applied to the "
    "reconstructions. Train time: wall-clock seconds of training only. Cells show mean ± sd over seeds (sd omitted "
    "for one seed); bold marks the best technique per column (lower is better for MAE, MSE and time, higher for the "
    "rest; reference rows excluded). Reference rows: PCA, the optimal linear autoencoder (a floor), and the classifier "
    "on the original images (a ceiling for accuracy)."
)


@dataclass
class Contents:
    """Everything the markdown and LaTeX documents show."""

    results: list[tuple[Group, Table]]
    statistics: dict[Group, Table]
    findings: list[list[str]]  # per results table: a heading line, then one line per finding
    empty: list[Group]
    problems: Table | None
    comparisons: list[StudyComparison]
    figures: list[Figure]
    gifs: list[Figure]
    facts: list[tuple[str, str]]
    command: str
    notes: list[str] = field(default_factory=list)  # each results folder's NOTES.md, shown as written


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


def cell_folders(folders: list[Path]) -> dict[tuple, Path]:
    """Cell key -> the cell's artefact folder, the latest row winning as in ``load_results``.

    Folders come from ``schema.cell_folder``, the one place that knows the layout.
    A cell folder reached through a symbolic link is left out with a warning (its files are never read).
    """
    found = {}
    for folder in folders:
        for row in read_rows(Path(folder)):
            path = cell_folder(folder, row["dataset"], row["technique"], row["seed"], row["config_hash"])
            try:
                found[tuple(row[k] for k in CELL_KEYS)] = inside(Path(folder), path)
            except UnsafePath as exc:
                skipped(path, reason(path, exc))
    return found


def first_config(cells: list[Cell], group: Group) -> dict:
    """The resolved config of the group's first cell (settings every cell of an experiment shares)."""
    return next((cell_config(c.folder) for c in cells if c.group == group), {})


def technique_configs(cells: list[Cell], group: Group) -> dict[str, dict]:
    """Technique -> the resolved config of one of its cells in the group (settings its seeds share)."""
    return {c.technique: cell_config(c.folder) for c in cells if c.group == group}


def distinct(frame: pd.DataFrame, column: str) -> str:
    values = sorted({str(v) for v in frame[column].dropna()}) if column in frame else []
    return ", ".join(values) or "unknown"


def compute(frame: pd.DataFrame) -> str:
    """Total training and evaluation seconds of the ok rows (classifier training and data loading not included)."""
    ok = frame[frame["status"] == "ok"]
    train, evaluation = ok["train_seconds"].sum(), ok["eval_seconds"].sum()
    return (
        f"{train + evaluation:.0f} s over {len(ok)} cells ({train:.0f} s training, {evaluation:.0f} s evaluation; "
        "classifier training and data loading not included)"
    )


def stamp(frame: pd.DataFrame, folders: list[Path], command: str) -> list[tuple[str, str]]:
    """What produced these results: versions, commits, devices, dates, and the command that made this report."""
    finished = sorted(str(v) for v in frame["finished_at"].dropna()) if "finished_at" in frame else []
    return [
        ("aebench version", distinct(frame, "aebench_version")),
        ("git commit", distinct(frame, "git_commit")),
        ("torch", distinct(frame, "torch_version")),
        ("device", distinct(frame, "device")),
        ("precision", distinct(frame, "precision")),
        ("compute", compute(frame)),
        ("training images", distinct(frame, "n_train")),
        ("test images", distinct(frame, "n_test")),
        ("results dated", f"{finished[0]} to {finished[-1]}" if finished else "unknown"),
        ("results folders", ", ".join(str(f) for f in folders)),
        ("report command", command),
    ]


def group_note(group: Group) -> str:
    if group.corruption == "none":
        return ""
    return f"Denoising: inputs corrupted by {group.corruption}; metrics compare outputs with the clean images."


def markdown(c: Contents) -> str:
    """The report as GitHub markdown, figures embedded as PNG."""
    parts = [
        "# aebench report",
        "",
        f"_Generated by `{c.command}` from raw results; do not edit by hand._",
        "",
        "## What this run shows",
        "",
        *(line for lines in c.findings for line in [lines[0], "", *(f"- {x}" for x in lines[1:]), ""]),
        PIXEL_SCALE,
        "",
        "## Results",
        "",
    ]
    for group, table in c.results:
        parts += [
            f"### {group.label}",
            "",
            *([group_note(group), ""] if group_note(group) else []),
            to_markdown(table),
            f"Numbers: [tables/{table.name}.csv](tables/{table.name}.csv)",
            "",
        ]
        if group in c.statistics:
            stats = c.statistics[group]
            parts += [
                f"#### {group.label}: statistics across seeds",
                "",
                to_markdown(stats),
                f"Numbers: [tables/{stats.name}.csv](tables/{stats.name}.csv)",
                "",
            ]
    parts += [f"### {g.label}\n\nNo successful cell.\n" for g in c.empty]
    parts += ["## Failed and skipped cells", "", to_markdown(c.problems) if c.problems else "None.", ""]
    parts += ["## Comparison with the study", ""]
    parts += (
        [STUDY_NOTE, "", *(line for s in c.comparisons for line in study_markdown(s))]
        if c.comparisons
        else ["No dataset and technique of the study (mnist, cifar10) in these results.", ""]
    )
    parts += ["## Figures", ""]
    for figure in c.figures:
        parts += [f"![{figure.caption}]({figure.stem}.png)", "", f"{figure.caption} ([PDF]({figure.stem}.pdf))", ""]
    if c.gifs:
        parts += ["### Training snapshots", ""] + [f"![{g.caption}]({g.stem})\n\n{g.caption}\n" for g in c.gifs]
    parts += ["## Reproducibility", ""] + [
        f"- **{key}**: `{value}`" if key.endswith("command") else f"- **{key}**: {value}" for key, value in c.facts
    ]
    if c.notes:
        parts += ["", "### How these results were produced", "", *(f"{note}\n" for note in c.notes)]
    return "\n".join(parts) + "\n"


def latex(c: Contents) -> str:
    """The report as a standalone LaTeX document, figures included as PDF."""
    parts = [
        r"\documentclass{article}",
        r"\usepackage[margin=2cm]{geometry}",
        r"\usepackage[T1]{fontenc}",
        r"\usepackage{booktabs,graphicx}",
        r"\begin{document}",
        r"\section*{aebench report}",
        r"\subsection*{What this run shows}",
        *(escape_latex(" ".join(lines).replace("**", "")) + "\n" for lines in c.findings),
        escape_latex(PIXEL_SCALE),
        "",
        r"\section*{Results}",
    ]
    for group, table in c.results:
        parts += [escape_latex(group_note(group)), to_latex(table)]
        parts += [to_latex(c.statistics[group])] if group in c.statistics else []
    parts += [escape_latex(f"{g.label}: no successful cell.") + "\n" for g in c.empty]
    parts += [r"\section*{Failed and skipped cells}", to_latex(c.problems) if c.problems else "None.", ""]
    parts += [r"\section*{Comparison with the study}"]
    parts += (
        [escape_latex(STUDY_NOTE), "", *(line for s in c.comparisons for line in study_latex(s))]
        if c.comparisons
        else [escape_latex("No dataset and technique of the study (mnist, cifar10) in these results."), ""]
    )
    parts += [r"\section*{Figures}"]
    for figure in c.figures:
        parts += [
            r"\begin{figure}[htbp]",
            r"\centering",
            rf"\includegraphics[width=\textwidth,height=0.8\textheight,keepaspectratio]{{{figure.stem}.pdf}}",
            rf"\caption{{{escape_latex(figure.caption)}}}",
            r"\end{figure}",
            "",
        ]
    if c.gifs:
        parts += [
            escape_latex("Training snapshots (animated GIFs, see README.md): " + ", ".join(g.stem for g in c.gifs)),
            "",
        ]
    parts += [r"\section*{Reproducibility}", r"\begin{itemize}"]
    parts += [rf"\item \textbf{{{escape_latex(key)}}}: {escape_latex(value)}" for key, value in c.facts]
    parts += [r"\end{itemize}"]
    if c.notes:
        parts += [r"\subsection*{How these results were produced}", r"\begin{verbatim}", *c.notes, r"\end{verbatim}"]
    parts += [r"\end{document}"]
    return "\n".join(parts) + "\n"


def write_report(folders: list[Path], out: Path, command: str) -> Path:
    """Regenerate ``out/`` from the results folders; returns the path of ``out/README.md``."""
    folders = [Path(f) for f in folders]
    frame = load_results(folders)
    if frame.empty:
        raise UserError(f"{', '.join(map(str, folders))}: results.jsonl has no rows yet (run an experiment first)")
    safe_folder(out, out / "tables")
    found = groups(frame)
    results, empty = [], []
    for group in found:
        table = results_table(group, rows_of(frame, group))
        results.append((group, table)) if table else empty.append(group)
    statistics = {g: t for g, _ in results if (t := statistics_table(g, rows_of(frame, g)))}
    problems = problems_table(frame)
    cells = rows_cells(frame, found, cell_folders(folders))
    comparisons = [s for g, _ in results if (s := study_comparison(g, rows_of(frame, g), technique_configs(cells, g)))]
    tables = [t for _, t in results] + list(statistics.values()) + [t for t in (problems,) if t]
    for table in tables + [t for s in comparisons for t in s.tables()]:
        write_text(out / "tables" / f"{table.name}.csv", table.numbers.to_csv(index=False))
    points = curves(cells)
    paragraphs = [
        findings(g, rows_of(frame, g), statistics[g].numbers, points, first_config(cells, g))
        for g, _ in results
        if g in statistics
    ]
    figures, gifs = all_figures(frame, found, cells, points, out)
    contents = Contents(
        results,
        statistics,
        [p for p in paragraphs if p],
        empty,
        problems,
        comparisons,
        figures,
        gifs,
        stamp(frame, folders, command),
        command,
        run_notes(folders),
    )
    write_text(out / "report.tex", latex(contents))
    readme = out / "README.md"
    write_text(readme, markdown(contents))
    return readme
