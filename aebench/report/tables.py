"""Report tables built from results rows, each rendered as markdown, LaTeX (booktabs) and CSV."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from aebench.report.statistics import ALPHA, BASELINE, format_p, seed_statistics
from aebench.results.schema import QUALITY, SPECS
from aebench.results.summary import aggregate, format_mean_sd

REFERENCE_TECHNIQUES = ("pca",)
CLEAN_ROW = "original images"


COLUMNS = [SPECS[name] for name in (*QUALITY, "train_seconds", "images_per_second")]


@dataclass(frozen=True)
class Group:
    """The rows of one (experiment, dataset) pair: one results table."""

    experiment: str
    dataset: str
    label: str
    corruption: str

    def tag(self, numbers: pd.DataFrame) -> None:
        """Prefix a table's numbers with this group's experiment and dataset columns (in place)."""
        numbers.insert(0, "dataset", self.dataset)
        numbers.insert(0, "experiment", self.experiment)

    @property
    def stem(self) -> str:
        return f"{self.experiment}_{self.dataset}".replace("/", "-")


@dataclass
class Table:
    """A table independent of its format: cell texts, which are bold, rules before some rows, and its numbers."""

    name: str
    caption: str
    headers: list[str]
    rows: list[list[str]]
    numbers: pd.DataFrame
    bold: set[tuple[int, int]] = field(default_factory=set)
    rules_before: set[int] = field(default_factory=set)
    align: str = ""
    wrap_last: bool = False
    footnotes: list[str] = field(default_factory=list)
    latex_headers: list[str] | None = None  # where LaTeX needs other header text (defaults to headers, escaped)


def groups(frame: pd.DataFrame) -> list[Group]:
    """(experiment, dataset) pairs in first-seen order; labelled by dataset alone unless a dataset recurs."""
    pairs = list(dict.fromkeys(zip(frame["experiment"], frame["dataset"])))
    datasets = [d for _, d in pairs]
    out = []
    for experiment, dataset in pairs:
        rows = frame[(frame["experiment"] == experiment) & (frame["dataset"] == dataset)]
        corruptions = sorted({str(c) for c in rows.get("corruption", pd.Series(dtype=str)).dropna()} - {"none"})
        label = dataset if datasets.count(dataset) == 1 else f"{dataset} ({experiment})"
        out.append(Group(experiment, dataset, label, ", ".join(corruptions) or "none"))
    return out


def rows_of(frame: pd.DataFrame, group: Group) -> pd.DataFrame:
    return frame[(frame["experiment"] == group.experiment) & (frame["dataset"] == group.dataset)]


def clean_ceiling(rows: pd.DataFrame) -> tuple[float, float, int]:
    """Mean, sd and count over seeds of the classifier's accuracy on clean test images."""
    ok = rows[rows["status"] == "ok"]
    per_seed = ok.groupby("seed")["accuracy_clean"].mean().dropna()
    return float(per_seed.mean()), float(per_seed.std()) if len(per_seed) > 1 else float("nan"), len(per_seed)


def technique_stats(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per technique: role, seeds and ``<metric>_mean`` / ``<metric>_sd``, plus the clean ceiling row."""
    stats = aggregate(rows, [c.name for c in COLUMNS])
    if stats.empty:
        return pd.DataFrame()
    stats = stats.droplevel("dataset")
    numbers = pd.DataFrame({"technique": stats.index, "seeds": stats[("seeds", "n")].astype(int).to_numpy()})
    numbers["role"] = ["reference" if t in REFERENCE_TECHNIQUES else "technique" for t in numbers["technique"]]
    for column in COLUMNS:
        numbers[f"{column.name}_mean"] = stats[(column.name, "mean")].to_numpy()
        numbers[f"{column.name}_sd"] = stats[(column.name, "std")].to_numpy()
    numbers = pd.concat([numbers[numbers["role"] == "technique"], numbers[numbers["role"] == "reference"]])
    mean, sd, n = clean_ceiling(rows)
    ceiling = {"technique": CLEAN_ROW, "seeds": n, "role": "reference", "accuracy_mean": mean, "accuracy_sd": sd}
    numbers = pd.concat([numbers, pd.DataFrame([ceiling])], ignore_index=True)
    return numbers[["technique", "role", "seeds", *(f"{c.name}_{s}" for c in COLUMNS for s in ("mean", "sd"))]]


def results_table(group: Group, rows: pd.DataFrame) -> Table | None:
    """Mean ± sd over seeds per technique; the best technique per column in bold (references excluded)."""
    numbers = technique_stats(rows)
    if numbers.empty:
        return None
    group.tag(numbers)
    table = Table(
        name=f"results_{group.stem}",
        caption=f"{group.label}: mean ± sd over seeds (experiment {group.experiment}, corruption: {group.corruption})",
        headers=["Technique", "Seeds", *(c.label for c in COLUMNS)],
        latex_headers=["Technique", "Seeds", *(c.latex for c in COLUMNS)],
        rows=[],
        numbers=numbers,
        align="lr" + "r" * len(COLUMNS),
    )
    techniques = numbers["role"] == "technique"
    table.rules_before |= {int(techniques.sum())} if techniques.any() else set()
    for record in numbers.to_dict("records"):
        name = record["technique"]
        label = (
            f"{name} (linear floor)"
            if name in REFERENCE_TECHNIQUES
            else f"{name} (classifier ceiling)"
            if name == CLEAN_ROW
            else name
        )
        table.rows.append(
            [
                label,
                str(record["seeds"]),
                *(
                    format_mean_sd(record[f"{c.name}_mean"], record[f"{c.name}_sd"], SPECS[c.name].digits)
                    for c in COLUMNS
                ),
            ]
        )
    for j, column in enumerate(COLUMNS, start=2):
        means = numbers.loc[techniques, f"{column.name}_mean"].dropna()
        if len(means) < 2:
            continue
        best = means.min() if column.lower_is_better else means.max()
        table.bold |= {(int(i), j) for i in means.index[means == best]}
    return table


def interval_text(low: float, high: float, digits: int, sign: str = "") -> str:
    return "–" if pd.isna(low) else f"[{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def statistics_table(group: Group, rows: pd.DataFrame) -> Table | None:
    """Per metric and technique: mean ± sd, its 95 % CI, and the paired difference from the baseline on the same
    seeds with its 95 % CI and p-value; a difference with p >= ALPHA is marked "n.s." (not significant)."""
    numbers = seed_statistics(rows)
    if numbers.empty:
        return None
    group.tag(numbers)
    table = Table(
        name=f"statistics_{group.stem}",
        caption=f"{group.label}: 95 % confidence intervals over seeds and paired differences from the {BASELINE}",
        headers=["Metric", "Technique", "Seeds", "Mean ± sd", "95 % CI", f"Δ vs {BASELINE}", "95 % CI of Δ", "p", ""],
        rows=[],
        numbers=numbers,
        align="llrrrrrrl",
    )
    previous = None
    for i, r in enumerate(numbers.to_dict("records")):
        spec = SPECS[r["metric"]]
        if previous is not None and r["metric"] != previous:
            table.rules_before.add(i)
        previous = r["metric"]
        tested = not pd.isna(r["p_value"])
        table.rows.append(
            [
                spec.label,
                r["technique"],
                str(r["seeds"]),
                format_mean_sd(r["mean"], r["sd"], spec.digits),
                interval_text(r["ci_low"], r["ci_high"], spec.digits),
                "–" if pd.isna(r["diff_mean"]) else f"{r['diff_mean']:+.{spec.digits}f}",
                interval_text(r["diff_low"], r["diff_high"], spec.digits, "+"),
                format_p(r["p_value"]),
                ("" if r["significant"] else "n.s.") if tested else "",
            ]
        )
        if tested and r["significant"]:
            table.bold.add((i, 5))
    table.footnotes.append(
        f"Δ = technique minus {BASELINE} on the seeds both ran (paired t-test, two-sided); bold: p < {ALPHA}; "
        f"n.s.: not significant at the seeds run. CIs use Student's t (none for one seed)."
    )
    return table


def problems_table(frame: pd.DataFrame) -> Table | None:
    """Failed and skipped cells with their reasons."""
    bad = frame[frame["status"].isin(["failed", "skipped"])]
    if bad.empty:
        return None
    numbers = bad[["experiment", "dataset", "technique", "seed", "status", "reason"]].reset_index(drop=True)
    return Table(
        name="problems",
        caption="Failed and skipped cells (failed cells keep a traceback in their cell folder's error.log)",
        headers=["Experiment", "Dataset", "Technique", "Seed", "Status", "Reason"],
        rows=[[str(v) for v in r] for r in numbers.itertuples(index=False)],
        numbers=numbers,
        align="lllrll",
        wrap_last=True,
    )


def escape_markdown(text: str) -> str:
    return text.replace("|", r"\|")


def to_markdown(table: Table) -> str:
    """A GitHub-flavoured markdown table; bold cells as ``**x**``."""
    align = ["---:" if a == "r" else ":---" for a in table.align]
    lines = ["| " + " | ".join(table.headers) + " |", "|" + "|".join(align) + "|"]
    for i, row in enumerate(table.rows):
        cells = [f"**{escape_markdown(c)}**" if (i, j) in table.bold else escape_markdown(c) for j, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    if table.footnotes:
        lines += ["", *(f"- {note}" for note in table.footnotes)]
    return "\n".join(lines) + "\n"


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}
LATEX_UNICODE = {
    "±": r"$\pm$",
    "–": "--",
    "−": "$-$",
    "Δ": r"$\Delta$",
    "×": r"$\times$",
    "≥": r"$\geq$",
    "…": r"\dots{}",
}


def escape_latex(text: str) -> str:
    out = "".join(LATEX_SPECIAL.get(ch, ch) for ch in text)
    for char, command in LATEX_UNICODE.items():
        out = out.replace(char, command)
    return out.encode("ascii", "replace").decode()


def to_latex(table: Table) -> str:
    """A booktabs table float; wide numeric tables are scaled to the text width."""
    headers = table.latex_headers or [escape_latex(h) for h in table.headers]
    body = [r"\toprule", " & ".join(headers) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        if i in table.rules_before:
            body.append(r"\midrule")
        cells = [
            rf"\textbf{{{escape_latex(c)}}}" if (i, j) in table.bold else escape_latex(c) for j, c in enumerate(row)
        ]
        body.append(" & ".join(cells) + r" \\")
    body.append(r"\bottomrule")
    spec = table.align[:-1] + r"p{0.45\textwidth}" if table.wrap_last else table.align
    tabular = "\n".join([rf"\begin{{tabular}}{{{spec}}}", *body, r"\end{tabular}"])
    if not table.wrap_last:
        tabular = r"\resizebox{\textwidth}{!}{%" + "\n" + tabular + "\n}"
    return "\n".join(
        [
            r"\begin{table}[htbp]",
            r"\centering",
            rf"\caption{{{escape_latex(table.caption)}}}",
            rf"\label{{tab:{table.name}}}",
            tabular,
            *(rf"\par\smallskip{{\footnotesize {escape_latex(n)}}}" for n in table.footnotes),
            r"\end{table}",
            "",
        ]
    )
