"""A run set beside the study it reproduces, per dataset of the study: per technique and metric the published
value, ours (mean ± sd, 95 % CI), their ratio and whether the published value lies in our interval; the ordering
agreement per metric (Spearman's rank correlation); each headline claim checked in words; and every way the run
differs from the study's (length, data size, seeds, hardware, settings), stated beside the numbers.

Technique names come from the published table (``anchors``) and facts (role, measurements) from the rows. The
report's sanity flags come in as ``flags`` (anything with ``why_not(technique, metric)``): a flagged technique keeps
its numbers, marked, but makes no claim and takes no place in an ordering on the metrics its flag covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import pandas as pd

from aebench.reporting.anchors import ANCHORS, CLAIMS, CLEAN_ACCURACY, STUDY, STUDY_RUNS, StudyRun
from aebench.reporting.conditions import TIME_METRICS, devices_of, time_standing
from aebench.reporting.rank_agreement import spearman, spearman_p
from aebench.reporting.statistics import estimate, format_p, per_seed
from aebench.reporting.study_caveats import caveats, differing_keys
from aebench.reporting.study_claims import Barring, NoFlags, Scope, claim_sentence, ranked
from aebench.reporting.tables import (
    CLEAN_ROW,
    Group,
    Table,
    clean_accuracies,
    escape_latex,
    to_latex,
    to_markdown,
)
from aebench.results.schema import SPECS
from aebench.results.summary import finished

COMPARED = ("mae", "mse", "accuracy", "train_seconds")  # the study's columns


@dataclass
class StudyComparison:
    """One results group beside the study: the table, the ordering agreement, the claims and the caveats."""

    group: Group
    study: StudyRun
    table: Table
    ordering: Table | None
    claims: list[str]
    caveats: list[str] = field(default_factory=list)

    def tables(self) -> list[Table]:
        return [t for t in (self.table, self.ordering) if t is not None]


def study_comparison(
    group: Group, rows: pd.DataFrame, configs: Mapping[str, dict], flags: Barring | None = None
) -> StudyComparison | None:
    """The comparison for one group's rows, or None when its dataset is not the study's or no technique of the
    study finished. ``configs``: technique -> a resolved cell config (config.yaml); ``flags``: the report's sanity
    flags of the group (``why_not(technique, metric)``; none by default)."""
    study = STUDY_RUNS.get(group.dataset)
    ok = finished(rows)
    if study is None or ok.empty:
        return None
    scope = Scope(group.dataset, rows, ok, flags or NoFlags())
    if not scope.present:
        return None
    return StudyComparison(
        group,
        study,
        comparison_table(group, study, scope),
        ordering_table(group, study, scope),
        [
            claim_sentence(c, study, scope, differing_keys(group.dataset, scope.present, configs))
            for c in CLAIMS
            if c.dataset == group.dataset
        ],
        caveats(study, scope, configs),
    )


def other_hardware(ok: pd.DataFrame, technique: str, study: StudyRun) -> str | None:
    """Why a technique's train times cannot be set against the study's interval: 'other hardware' where a row ran
    on another kind of device than the study's, 'hardware not recorded' where a row lacks its device; else None."""
    devices = ok.loc[ok["technique"] == technique, "device"] if "device" in ok else pd.Series([None])
    if any(str(d).split(":")[0] != study.device for d in devices.dropna()):
        return "other hardware"
    return "hardware not recorded" if devices.isna().any() else None


def comparison_table(group: Group, study: StudyRun, scope: Scope) -> Table:
    """Per technique and metric: the study's value, ours with its 95 % CI, the ratio, and whether it lies inside."""
    ok, present = scope.ok, scope.present
    series = [(t, m, per_seed(ok, t, m), getattr(ANCHORS[(group.dataset, t)], m)) for t in present for m in COMPARED]
    clean = clean_accuracies(ok)
    series.append((CLEAN_ROW, "accuracy", clean, CLEAN_ACCURACY[group.dataset]))
    records = []
    for technique, metric, values, published in series:
        e = estimate(values)
        inside = None if published is None or math.isnan(e.low) else bool(e.low <= published <= e.high)
        unlike = other_hardware(ok, technique, study) if metric in TIME_METRICS else None
        records.append(
            {
                "technique": technique,
                "metric": metric,
                "study": published,
                "mean": e.mean,
                "sd": e.sd,
                "seeds": e.n,
                "ci_low": e.low,
                "ci_high": e.high,
                "ratio": e.mean / published if published else math.nan,
                "study_in_ci": None if unlike else inside,
                "not_judged": unlike or "",
                "flag": scope.flags.why_not(technique, metric) or "",
            }
        )
    numbers = pd.DataFrame(records)
    group.tag(numbers)
    table = Table(
        name=f"study_{group.stem}",
        caption=(
            f"{group.label} beside the study's {study.name} ({study.epochs} epochs, {study.n_train:,} training "
            f"images, {study.seeds} seed, {study.hardware}): read with the caveats above"
        ),
        headers=[
            "Technique",
            "Metric",
            "Study",
            "Ours (mean ± sd)",
            "95 % CI",
            "Seeds",
            "Ours / study",
            "Study in CI",
            "Flag",
        ],
        rows=[],
        numbers=numbers,
        align="llrrrrrll",
        wrap_last=True,
    )
    for i, r in enumerate(numbers.to_dict("records")):
        digits = SPECS[r["metric"]].digits
        if i and r["technique"] != numbers["technique"].iloc[i - 1]:
            table.rules_before.add(i)
        table.rows.append(
            [
                r["technique"],
                SPECS[r["metric"]].label,
                "–" if r["study"] is None or pd.isna(r["study"]) else f"{r['study']:.6g}",
                "–"
                if pd.isna(r["mean"])
                else f"{r['mean']:.{digits}f}" + ("" if pd.isna(r["sd"]) else f" ± {r['sd']:.{digits}f}"),
                "–" if pd.isna(r["ci_low"]) else f"[{r['ci_low']:.{digits}f}, {r['ci_high']:.{digits}f}]",
                str(r["seeds"]),
                "–" if pd.isna(r["ratio"]) else f"{r['ratio']:.2f}",
                f"– ({r['not_judged']})" if r["not_judged"] else {True: "yes", False: "no"}.get(r["study_in_ci"], "–"),
                r["flag"],
            ]
        )
    table.footnotes += [
        f"Study, {t}: {ANCHORS[(group.dataset, t)].note}." for t in present if ANCHORS[(group.dataset, t)].note
    ]
    table.footnotes.append(
        "Ours / study: our mean over the study's value. Study in CI: whether the study's single value lies in our 95 % "
        "Student-t interval of the mean (none for one seed); for train time only where our rows ran on the kind of "
        f"device the study's did ({study.device}), else – (other hardware, or hardware not recorded): the ratio "
        "then measures the hardware as much as the technique. Flagged techniques make no claim below."
    )
    return table


def ordering_table(group: Group, study: StudyRun, scope: Scope) -> Table | None:
    """Per metric: Spearman's rank correlation of our means with the study's values over the techniques both have
    (references and techniques flagged on the metric left out); train time's, with what its agreement can mean
    where our hardware is not the study's."""
    records, timed = [], []
    for metric in COMPARED:
        ours = scope.means(scope.usable(metric), metric)
        theirs = {t: getattr(ANCHORS[(group.dataset, t)], metric) for t in ours}
        both = [t for t in ours if theirs[t] is not None]
        timed += both if metric in TIME_METRICS else []
        pairs = ([ours[t] for t in both], [theirs[t] for t in both])
        records.append(
            {
                "metric": metric,
                "techniques": len(both),
                "spearman": spearman(*pairs),
                "p_exact": spearman_p(*pairs),
                "ours": ", ".join(ranked({t: ours[t] for t in both}, metric)),
                "study": ", ".join(ranked({t: theirs[t] for t in both}, metric)),
            }
        )
    if not any(r["techniques"] for r in records):
        return None
    numbers = pd.DataFrame(records)
    group.tag(numbers)
    return Table(
        name=f"study_ordering_{group.stem}",
        caption=f"{group.label}: does our ordering of the study's techniques agree with the study's?",
        headers=["Metric", "Techniques", "Spearman ρ", "p (exact)", "Ours, best first", "Study, best first"],
        latex_headers=[
            "Metric",
            "Techniques",
            r"Spearman $\rho$",
            "p (exact)",
            "Ours, best first",
            "Study, best first",
        ],
        rows=[
            [
                SPECS[r["metric"]].label,
                str(r["techniques"]),
                "–" if pd.isna(r["spearman"]) else f"{r['spearman']:+.2f}",
                format_p(r["p_exact"]),
                r["ours"],
                r["study"],
            ]
            for r in records
        ],
        numbers=numbers,
        align="lrrrll",
        footnotes=[
            "Spearman ρ: +1 the same order, −1 the reverse; – with fewer than 3 techniques or no spread. "
            "p (exact): the share of all orderings of our techniques that agree with the study's at least as well "
            "(|ρ| as large), two-sided; with n techniques it cannot fall below 2/n! (4: 0.083, 5: 0.017), so a "
            "small set shows no agreement however well it orders. Flagged and reference techniques are left out.",
            *time_order_note(study, scope.ok[scope.ok["technique"].isin(timed)]),
        ],
    )


def time_order_note(study: StudyRun, ok: pd.DataFrame) -> list[str]:
    """Where the train-time order compares our times on other (or unrecorded) hardware with the study's: what an
    agreement means, and whether our own times compare (none where the hardware is the study's kind)."""
    if ok.empty or not any(other_hardware(ok, t, study) for t in dict.fromkeys(ok["technique"])):
        return []
    devices = devices_of(ok)
    standing = time_standing(ok)
    return [
        f"Train time: ours on {devices or 'unrecorded hardware'}, the study's on {study.hardware}: the order compares "
        "the techniques' relative cost on each hardware (an agreement says it carries over, not that the times agree)"
        + (
            f"; between our techniques the times are {standing}, so our order may reflect that too."
            if standing
            else "."
        )
    ]


def markdown(c: StudyComparison) -> list[str]:
    """The comparison as markdown lines: caveats first, then the tables and the claims."""
    return [
        f"### {c.group.label} beside the study's {c.study.name}",
        "",
        "Read with care:",
        "",
        *(f"- {line}" for line in c.caveats),
        "",
        to_markdown(c.table),
        f"Numbers: [tables/{c.table.name}.csv](tables/{c.table.name}.csv)",
        "",
        *(
            [to_markdown(c.ordering), f"Numbers: [tables/{c.ordering.name}.csv](tables/{c.ordering.name}.csv)", ""]
            if c.ordering
            else []
        ),
        *(f"- {line}" for line in c.claims),
        "",
    ]


def latex(c: StudyComparison) -> list[str]:
    """The comparison as LaTeX: caveats, tables, claims."""
    items = [rf"\item {escape_latex(line.replace('**', ''))}" for line in c.caveats]
    claims = [rf"\item {escape_latex(line.replace('**', ''))}" for line in c.claims]
    return [
        rf"\subsection*{{{escape_latex(f'{c.group.label} beside the study (' + c.study.name + ')')}}}",
        r"\begin{itemize}", *items, r"\end{itemize}",
        *(to_latex(t) for t in c.tables()),
        *([r"\begin{itemize}", *claims, r"\end{itemize}"] if claims else []),
    ]  # fmt: skip


STUDY_NOTE = f"Study: {STUDY}. Every metric on [0, 1] pixels, output clamped, full test split."
