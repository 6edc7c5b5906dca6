"""Report tables built from one group's rows, each rendered as markdown, LaTeX (booktabs) and CSV."""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass, field

import pandas as pd

from aebench.reporting.conditions import TIME_METRICS, conditions, time_caveat
from aebench.reporting.groups import Group
from aebench.reporting.rows import training_rates
from aebench.reporting.sanity import ALL, Flag, Flags
from aebench.reporting.statistics import ALPHA, format_p
from aebench.results.schema import QUALITY, SPECS
from aebench.results.settings import plural
from aebench.results.summary import aggregate, finished, format_mean_sd

CLEAN_ROW = "original images"
COLUMNS = [SPECS[name] for name in (*QUALITY, "train_seconds", "images_per_second")]
ROLE_ORDER = {"baseline": 0, "compared": 1, "unknown": 1, "reference": 2}
TIER = {"baseline": 0, "compared": 0, "unknown": 0, "reference": 1, "ceiling": 2}  # a rule between tiers
ROLE_LABEL = {"reference": " (reference)", "unknown": " (role unknown)"}


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


def clean_accuracies(rows: pd.DataFrame) -> pd.Series:
    """The classifier's accuracy on clean test images, once per classifier: it is one instrument shared by every
    technique and seed (trained once, not per seed), so rows repeating its value are one measurement, not several."""
    return pd.Series(finished(rows)["accuracy_clean"].dropna().astype(float).unique())


def clean_ceiling(rows: pd.DataFrame) -> tuple[float, float, int]:
    """Mean, sd and count over classifiers of the accuracy on clean test images."""
    values = clean_accuracies(rows)
    return float(values.mean()), float(values.std()) if len(values) > 1 else float("nan"), len(values)


def technique_stats(rows: pd.DataFrame, flags: Flags) -> pd.DataFrame:
    """One row per technique (baseline, compared, references): role, seeds, flags and ``<metric>_mean`` /
    ``<metric>_sd``, plus the clean ceiling row. A fit-only cell's images/s (no training epoch) is left out."""
    ok = finished(rows)
    stats = aggregate(training_rates(ok), [c.name for c in COLUMNS])
    if stats.empty:
        return pd.DataFrame()
    stats = stats.droplevel("dataset")
    roles = ok.groupby("technique", sort=False)["role"].first()
    numbers = pd.DataFrame({"technique": stats.index, "seeds": stats[("seeds", "n")].astype(int).to_numpy()})
    numbers["role"] = [roles[t] for t in numbers["technique"]]
    numbers["flags"] = ["; ".join(f.label for f in flags.of(t)) for t in numbers["technique"]]
    for column in COLUMNS:
        numbers[f"{column.name}_mean"] = stats[(column.name, "mean")].to_numpy()
        numbers[f"{column.name}_sd"] = stats[(column.name, "std")].to_numpy()
    numbers = numbers.sort_values("role", key=lambda r: r.map(ROLE_ORDER), kind="stable")
    mean, sd, n = clean_ceiling(rows)
    ceiling = {"technique": CLEAN_ROW, "seeds": n, "role": "ceiling", "accuracy_mean": mean, "accuracy_sd": sd}
    numbers = pd.concat([numbers, pd.DataFrame([ceiling])], ignore_index=True)
    columns = ["technique", "role", "seeds", "flags", *(f"{c.name}_{s}" for c in COLUMNS for s in ("mean", "sd"))]
    return numbers[columns].fillna({"flags": ""})


def withheld(flag: Flag) -> str:
    """What a flag withholds, in words."""
    if flag.metrics == ALL:
        return "no claim rests on it"
    what = ", ".join(SPECS[m].label for m in sorted(flag.metrics))
    return f"no {what} claim rests on it" if flag.technique else f"{what} makes no claim in this table"


def flag_notes(flags: Flags) -> list[str]:
    """One footnote per flag: its reason and what it withholds."""
    return [f"Flagged ({f.label}): {f.reason}; {withheld(f)}." for f in flags.flags]


EARLIER_REASONS = {
    "config": "finished cells of this setting at an earlier config (a rerun with other options); each cell shows its "
    "latest config only",
    "recipe": "finished cells of another recipe (options other than those of the technique's latest row), or of "
    "one not recorded; each technique shows the seeds of its latest recipe only, never a mix of recipes",
}  # why a finished row is not shown, by its "left_out" ("config" or "recipe", set by aebench.reporting.rows)


def earlier_note(earlier: list[dict]) -> list[str]:
    """'3 earlier rows not shown (baseline seeds 0, 1, 2): ...', one note per reason the rows were left out (or
    none)."""
    notes = []
    for why, text in EARLIER_REASONS.items():
        rows = [r for r in earlier if r["left_out"] == why]
        if not rows:
            continue
        seeds: dict[str, list[int]] = {}
        for row in rows:
            seeds.setdefault(row["technique"], []).append(row["seed"])
        which = "; ".join(
            f"{t} seed{'s' * (len(s) > 1)} {', '.join(map(str, sorted(set(s))))}" for t, s in seeds.items()
        )
        notes.append(f"{plural(len(rows), 'earlier row')} not shown ({which}): {text}.")
    return notes


def condition_notes(ok: pd.DataFrame, caveat: str | None) -> list[str]:
    """Footnotes where the rows mix devices or precisions, and where their times do not compare like-for-like
    (``caveat``: why, from ``time_caveat``)."""
    if ok["technique"].nunique() < 2:
        return []
    timed = caveat and f"Train time and images/s are {caveat}, so neither column is ranked (none in bold)."
    return [n for n in (conditions(ok).quality_note(), timed) if n]


def results_table(group: Group, rows: pd.DataFrame, flags: Flags, earlier: list[dict] | None = None) -> Table | None:
    """Mean ± sd over seeds per technique; per column the best claimable technique in bold (no reference, no
    flag on that metric; no time column where the times are not, or not known to be, like-for-like); the flags and
    their reasons beside the numbers; ``earlier``: the group's superseded rows, counted in a footnote; mixed
    measuring conditions, in another."""
    numbers = technique_stats(rows, flags)
    if numbers.empty:
        return None
    group.tag(numbers)
    ok = finished(rows)
    caveat = time_caveat(ok)
    table = Table(
        name=f"results_{group.stem}",
        caption=f"{group.label}: mean ± sd over seeds; {group.setting.line()}",
        headers=["Technique", "Seeds", *(c.label for c in COLUMNS), "Flags"],
        latex_headers=["Technique", "Seeds", *(c.latex for c in COLUMNS), "Flags"],
        rows=[],
        numbers=numbers,
        align="lr" + "r" * len(COLUMNS) + "l",
        footnotes=flag_notes(flags) + earlier_note(earlier or []) + condition_notes(ok, caveat),
    )
    tiers = numbers["role"].map(TIER).to_numpy()
    table.rules_before |= {i for i in range(1, len(tiers)) if tiers[i] != tiers[i - 1]}
    contenders = tiers == 0
    unranked = set(TIME_METRICS) if caveat else set()  # times that do not compare
    for record in numbers.to_dict("records"):
        label = f"{CLEAN_ROW} (classifier ceiling)" if record["role"] == "ceiling" else record["technique"]
        table.rows.append(
            [
                label + ROLE_LABEL.get(record["role"], ""),
                str(record["seeds"]),
                *(format_mean_sd(record[f"{c.name}_mean"], record[f"{c.name}_sd"], c.digits) for c in COLUMNS),
                record["flags"] or "",
            ]
        )
    for j, column in enumerate(COLUMNS, start=2):
        if column.name in unranked:
            continue
        claimable = [
            i
            for i in numbers.index[contenders]
            if flags.claimable(numbers.at[i, "technique"], column.name)
            and not pd.isna(numbers.at[i, f"{column.name}_mean"])
        ]
        if len(claimable) < 2:
            continue
        means = numbers.loc[claimable, f"{column.name}_mean"]
        best = means.min() if column.lower_is_better else means.max()
        table.bold |= {(int(i), j) for i in means.index[means == best]}
    return table


def interval_text(low: float, high: float, digits: int, sign: str = "") -> str:
    return "–" if pd.isna(low) else f"[{low:{sign}.{digits}f}, {high:{sign}.{digits}f}]"


def statistics_table(
    group: Group, numbers: pd.DataFrame, baseline: str | None, caveat: str | None = None
) -> Table | None:
    """Per metric and technique: mean ± sd, its 95 % CI, and the paired difference from the baseline on the same
    seeds with its 95 % CI, raw and Holm-adjusted p-value and verdict (or why it is not tested); ``caveat``:
    why the group's times are not like-for-like, under the table where a time verdict is marked."""
    if numbers.empty:
        return None
    numbers = numbers.copy()
    group.tag(numbers)
    against = baseline or "baseline"
    table = Table(
        name=f"statistics_{group.stem}",
        caption=f"{group.label}: 95 % confidence intervals over seeds and paired differences from {against}; "
        f"{group.setting.line()}",
        headers=[
            "Metric",
            "Technique",
            "Seeds",
            "Mean ± sd",
            "95 % CI",
            f"Δ vs {against}",
            "95 % CI of Δ",
            "p",
            "p (Holm)",
            "Verdict",
        ],
        rows=[],
        numbers=numbers,
        align="llrrrrrrrl",
    )
    previous = None
    for i, r in enumerate(numbers.to_dict("records")):
        spec = SPECS[r["metric"]]
        if previous is not None and r["metric"] != previous:
            table.rules_before.add(i)
        previous = r["metric"]
        verdict = r["note"] or ("real" if r["significant"] else "n.s.") + (f" ({r['caveat']})" if r["caveat"] else "")
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
                format_p(r["p_holm"]),
                verdict,
            ]
        )
        if r["significant"] and not r["caveat"]:  # a time difference of unlike conditions is no finding to bold
            table.bold.add((i, 5))
    table.footnotes.append(
        f"Δ = technique minus {against} on the seeds both ran (paired t-test, two-sided). p (Holm): adjusted by "
        f"Holm's method over the techniques tested on that metric; real (bold, but not a train time marked with its "
        f"conditions): Holm p < {ALPHA}; n.s.: not "
        "significant at the seeds run. A flagged technique, one with too few paired seeds, or one that differs by the "
        "same amount on every seed (no spread to test) is not tested. "
        "CIs use Student's t (none for one seed)."
    )
    if caveat and numbers["caveat"].astype(bool).any():
        marks = ", ".join(sorted(set(numbers["caveat"]) - {""}))
        table.footnotes.append(f"Train time verdicts marked ({marks}): the times are {caveat}.")
    return table


def problems_table(frame: pd.DataFrame) -> Table | None:
    """Failed and skipped cells with their reasons, the seeds of one technique that share a reason on one line."""
    bad = frame[frame["status"].isin(["failed", "skipped"])]
    if bad.empty:
        return None
    keys = ["experiment", "dataset", "technique", "status", "reason"]
    numbers = (
        bad.groupby(keys, sort=False)["seed"]
        .agg(lambda seeds: ", ".join(str(s) for s in sorted(seeds)))
        .reset_index()[["experiment", "dataset", "technique", "seed", "status", "reason"]]
        .rename(columns={"seed": "seeds"})
    )
    return Table(
        name="problems",
        caption="Failed and skipped cells (failed cells keep a traceback in their cell folder's error.log)",
        headers=["Experiment", "Dataset", "Technique", "Seeds", "Status", "Reason"],
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
        cells = [
            f"**{escape_markdown(c)}**" if (i, j) in table.bold and c else escape_markdown(c) for j, c in enumerate(row)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if table.footnotes:
        lines += ["", *(f"- {note}" for note in table.footnotes)]
    return "\n".join(lines) + "\n"


LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "/": r"/\allowbreak{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_\allowbreak{}",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"\textless{}",
    ">": r"\textgreater{}",
    "|": r"\textbar{}",
}
# Characters beyond ASCII that reports print: as LaTeX (running text) and as ASCII (verbatim blocks).
UNICODE = {
    "±": (r"$\pm$", "+/-"),
    "–": ("--", "-"),
    "—": ("---", "--"),
    "−": ("$-$", "-"),
    "Δ": (r"$\Delta$", "Delta"),
    "×": (r"$\times$", "x"),
    "≥": (r"$\geq$", ">="),
    "≤": (r"$\leq$", "<="),
    "≈": (r"$\approx$", "~"),
    "≠": (r"$\neq$", "!="),
    "→": (r"$\rightarrow$", "->"),
    "·": (r"$\cdot$", "*"),
    "…": (r"\dots{}", "..."),
    "°": (r"$^\circ$", " deg"),
    "σ": (r"$\sigma$", "sigma"),
    "ρ": (r"$\rho$", "rho"),
    "µ": (r"$\mu$", "u"),
    "²": (r"$^2$", "^2"),
    "³": (r"$^3$", "^3"),
    "⁴": (r"$^4$", "^4"),
    "₁": (r"$_1$", "1"),
    "₂": (r"$_2$", "2"),
    "‘": ("`", "'"),
    "’": ("'", "'"),
    "“": ("``", '"'),
    "”": ("''", '"'),
    "✓": (r"$\checkmark$", "ok"),
}


def ascii_fallback(ch: str) -> str:
    """A character with its accents dropped (é -> e), or '?' where nothing ASCII is left."""
    base = "".join(c for c in unicodedata.normalize("NFKD", ch) if not unicodedata.combining(c))
    return base if base.isascii() and base else "?"


def escape_latex(text: str) -> str:
    """Running text for pdflatex: LaTeX's special characters escaped, known symbols as LaTeX, the rest ASCII."""
    out = []
    for ch in text:
        if ch in LATEX_SPECIAL:
            out.append(LATEX_SPECIAL[ch])
        elif ch.isascii():
            out.append(ch)
        else:
            out.append(UNICODE[ch][0] if ch in UNICODE else escape_latex(ascii_fallback(ch)))
    return "".join(out)


def ascii_text(text: str) -> str:
    """Text for a verbatim block: every character ASCII (verbatim takes no LaTeX)."""
    return "".join(ch if ch.isascii() else UNICODE[ch][1] if ch in UNICODE else ascii_fallback(ch) for ch in text)


VERBATIM_WIDTH = 96  # characters per line of a \footnotesize verbatim block inside 2 cm margins


VERBATIM_END = r"\end{verbatim}"  # the one string that closes a verbatim block (LaTeX matches it literally)


def verbatim_lines(text: str) -> list[str]:
    """ASCII lines no wider than the page, long ones wrapped with a hanging indent; an ``\\end{verbatim}`` in the
    text is broken (``\\end {verbatim}``), so the text cannot close its block and run as LaTeX (wrapping only
    splits lines, so it cannot join one again)."""
    lines = []
    for line in ascii_text(text).replace(VERBATIM_END, r"\end {verbatim}").expandtabs(4).splitlines():
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        lines += textwrap.wrap(line, VERBATIM_WIDTH, subsequent_indent=indent, break_on_hyphens=False) or [""]
    return lines


def to_latex(table: Table) -> str:
    """A booktabs table float; a long last column wraps (``wrap_last``), and a table still wider than the text
    is scaled down to it."""
    headers = table.latex_headers or [escape_latex(h) for h in table.headers]
    body = [r"\toprule", " & ".join(headers) + r" \\", r"\midrule"]
    for i, row in enumerate(table.rows):
        if i in table.rules_before:
            body.append(r"\midrule")
        cells = [
            rf"\textbf{{{escape_latex(c)}}}" if (i, j) in table.bold and c else escape_latex(c)
            for j, c in enumerate(row)
        ]
        body.append(" & ".join(cells) + r" \\")
    body.append(r"\bottomrule")
    spec = table.align[:-1] + r">{\raggedright\arraybackslash}p{0.33\textwidth}" if table.wrap_last else table.align
    tabular = "\n".join([rf"\begin{{tabular}}{{{spec}}}", *body, r"\end{tabular}"])
    tabular = (
        r"\resizebox{\ifdim\width>\textwidth\textwidth\else\width\fi}{!}{%" + "\n" + tabular + "\n}"
    )  # only if wider
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
