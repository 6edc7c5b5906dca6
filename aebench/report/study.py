"""A run set beside the study it reproduces, per dataset of the study: per technique and metric the published
value, ours (mean ± sd, 95 % CI), their ratio and whether the published value lies in our interval; the ordering
agreement per metric (Spearman's rank correlation); each headline claim checked in words; and every way the run
differs from the study's (length, data size, seeds, hardware, settings), stated beside the numbers.

Technique names come from the published table (``anchors``) and facts (role, measurements) from the rows. Techniques
that the report's sanity checks flag are passed in ``flagged``: they keep their numbers but make no claim.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from aebench.report.anchors import (
    ANCHORS,
    CLAIMS,
    CLEAN_ACCURACY,
    EQUAL_TOLERANCE,
    PROTOCOL_DIFFERENCES,
    SETTING_EFFECTS,
    STUDY,
    STUDY_RUNS,
    STUDY_SETTINGS,
    TECHNIQUE_SETTINGS,
    Claim,
    StudyRun,
)
from aebench.report.statistics import ALPHA, estimate, format_p, paired, per_seed
from aebench.report.tables import CLEAN_ROW, Group, Table, escape_latex, to_latex, to_markdown
from aebench.results.schema import SPECS
from aebench.results.summary import finished

COMPARED = ("mae", "mse", "accuracy", "train_seconds")  # the study's columns
MISSING = object()


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
    group: Group, rows: pd.DataFrame, configs: Mapping[str, dict], flagged: Mapping[str, str] | None = None
) -> StudyComparison | None:
    """The comparison for one group's rows, or None when its dataset is not the study's or no technique of the
    study finished. ``configs``: technique -> a resolved cell config (config.yaml); ``flagged``: technique -> why
    the report's sanity checks distrust it (shown, never claimed)."""
    study = STUDY_RUNS.get(group.dataset)
    ok = finished(rows)
    if study is None or ok.empty:
        return None
    flagged = dict(flagged or {})
    present = [t for t in dict.fromkeys(ok["technique"]) if (group.dataset, t) in ANCHORS]
    if not present:
        return None
    references = set(ok.loc[ok["role"] == "reference", "technique"]) if "role" in ok else set()
    usable = [t for t in present if t not in flagged and t not in references]
    return StudyComparison(
        group,
        study,
        comparison_table(group, study, ok, present, flagged),
        ordering_table(group, ok, usable),
        [claim_sentence(c, study, rows, ok, usable, flagged) for c in CLAIMS if c.dataset == group.dataset],
        caveats(group, study, rows, ok, present, configs, flagged),
    )


def comparison_table(group: Group, study: StudyRun, ok: pd.DataFrame, present: list[str], flagged: dict) -> Table:
    """Per technique and metric: the study's value, ours with its 95 % CI, the ratio, and whether it lies inside."""
    series = [(t, m, per_seed(ok, t, m), getattr(ANCHORS[(group.dataset, t)], m)) for t in present for m in COMPARED]
    clean = ok.groupby("seed")["accuracy_clean"].mean().astype(float)
    series.append((CLEAN_ROW, "accuracy", clean, CLEAN_ACCURACY[group.dataset]))
    records = []
    for technique, metric, values, published in series:
        e = estimate(values)
        inside = None if published is None or math.isnan(e.low) else bool(e.low <= published <= e.high)
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
                "study_in_ci": inside,
                "flag": flagged.get(technique, ""),
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
                {True: "yes", False: "no"}.get(r["study_in_ci"], "–"),
                r["flag"],
            ]
        )
    table.footnotes += [
        f"Study, {t}: {ANCHORS[(group.dataset, t)].note}." for t in present if ANCHORS[(group.dataset, t)].note
    ]
    table.footnotes.append(
        "Ours / study: our mean over the study's value. Study in CI: whether the study's single value lies in our 95 % "
        "Student-t interval of the mean (none for one seed). Flagged techniques make no claim below."
    )
    return table


def means(ok: pd.DataFrame, techniques: list[str], metric: str) -> dict[str, float]:
    """Mean over seeds per technique, for those with a value."""
    out = {t: float(per_seed(ok, t, metric).mean()) for t in techniques}
    return {t: v for t, v in out.items() if not math.isnan(v)}


def ranked(values: dict[str, float], metric: str) -> list[str]:
    """Techniques best first on ``metric``."""
    return sorted(values, key=values.get, reverse=not SPECS[metric].lower_is_better)


def ordering_table(group: Group, ok: pd.DataFrame, usable: list[str]) -> Table | None:
    """Per metric: Spearman's rank correlation of our means with the study's values over the techniques both have."""
    records = []
    for metric in COMPARED:
        ours = means(ok, usable, metric)
        theirs = {t: getattr(ANCHORS[(group.dataset, t)], metric) for t in ours}
        both = [t for t in ours if theirs[t] is not None]
        rho = spearman([ours[t] for t in both], [theirs[t] for t in both])
        records.append(
            {
                "metric": metric,
                "techniques": len(both),
                "spearman": rho,
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
        headers=["Metric", "Techniques", "Spearman ρ", "Ours, best first", "Study, best first"],
        latex_headers=["Metric", "Techniques", r"Spearman $\rho$", "Ours, best first", "Study, best first"],
        rows=[
            [
                SPECS[r["metric"]].label,
                str(r["techniques"]),
                "–" if pd.isna(r["spearman"]) else f"{r['spearman']:+.2f}",
                r["ours"],
                r["study"],
            ]
            for r in records
        ],
        numbers=numbers,
        align="lrrll",
        footnotes=[
            "Spearman ρ: +1 the same order, −1 the reverse; – with fewer than 3 techniques or no spread. "
            "Flagged and reference techniques are left out."
        ],
    )


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation, NaN for fewer than 3 pairs or a constant side."""
    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return math.nan
    return float(stats.spearmanr(a, b).statistic)


def absent(technique: str, rows: pd.DataFrame, flagged: Mapping[str, str]) -> str:
    """Why a technique has no usable result here: flagged, skipped or failed (with the reason), or not run."""
    if technique in flagged:
        return f"flagged: {flagged[technique]}"
    mine = rows[rows["technique"] == technique]
    if mine.empty:
        return "not run"
    last = mine.iloc[-1]
    return f"{last['status']}: {last['reason']}" if last["status"] != "ok" else "no finished seed"


def rank_evidence(claim: Claim, ok: pd.DataFrame, usable: list[str], metric: str) -> tuple[bool, str, str] | None:
    """Whether ``claim.best`` has the best mean on ``metric``; the evidence against the runner-up (or the winner);
    and, when the paired test does not back the verdict, why (None: nothing to rank)."""
    values = means(ok, usable, metric)
    if claim.best not in values or len(values) < 2:
        return None
    order = ranked(values, metric)
    best = order[0] == claim.best
    other = order[1] if best else order[0]
    test = paired(per_seed(ok, claim.best, metric), per_seed(ok, other, metric))
    spec, n = SPECS[metric], test.difference.n
    seeds = f"{n} paired seed{'s' if n != 1 else ''}"
    ours, theirs = f"{values[claim.best]:.{spec.digits}f}", f"{values[other]:.{spec.digits}f}"
    test_text = f"Δ {test.difference.mean:+.{spec.digits}f}, p={format_p(test.p_value)}, {seeds}"
    text = (
        f"{spec.label}: {claim.best} best at {ours}, next {other} {theirs} ({test_text})"
        if best
        else f"{spec.label}: {other} {theirs} beats {claim.best} {ours} ({test_text})"
    )
    doubt = (
        f"{spec.label} not testable with {seeds}"
        if math.isnan(test.p_value)
        else f"{spec.label} against {other} not significant at p < {ALPHA}"
        if test.p_value >= ALPHA
        else ""
    )
    return best, text, doubt


def claim_sentence(
    claim: Claim, study: StudyRun, rows: pd.DataFrame, ok: pd.DataFrame, usable: list[str], flagged: Mapping[str, str]
) -> str:
    """'The study on MNIST: "…". **Holds** / **Does not hold** / **Untested here**: the evidence.'"""
    head = f'The study on {study.name}: "{claim.words}".'
    if claim.best not in usable:
        return f"{head} **Untested here**: no usable result of {claim.best} ({absent(claim.best, rows, flagged)})."
    if len(usable) < 2:
        return f"{head} **Untested here**: {claim.best} is the only technique of the study with a usable result."
    verdicts, evidence, doubts = [], [], []
    for metric in claim.metrics:
        found = rank_evidence(claim, ok, usable, metric)
        if found is None:
            return f"{head} **Untested here**: no {SPECS[metric].label} to rank {claim.best} by."
        verdicts.append(found[0])
        evidence.append(found[1])
        doubts += [found[2]] if found[2] else []
    if claim.equal_metric is not None and claim.equal_to is not None:
        equal = equal_evidence(claim, ok, usable)
        if equal is None:
            why = absent(claim.equal_to, rows, flagged)
            label = SPECS[claim.equal_metric].label
            return f"{head} **Untested here**: no usable result of {claim.equal_to} ({why}) to check equal {label} against."
        verdicts.append(equal[0])
        evidence.append(equal[1])
    verdict = "Holds" if all(verdicts) else "Does not hold"
    margin = f" (by the means; {'; '.join(doubts)})" if doubts else ""
    missing = [t for (d, t) in ANCHORS if d == claim.dataset and t not in usable]
    scope = f" Ranked among {', '.join(usable)}; without a usable result here: {', '.join(missing)}." if missing else ""
    return f"{head} **{verdict}**{margin}: {'; '.join(evidence)}.{scope}"


def equal_evidence(claim: Claim, ok: pd.DataFrame, usable: list[str]) -> tuple[bool, str] | None:
    """Whether ``claim.best``'s mean on ``claim.equal_metric`` lies within EQUAL_TOLERANCE of ``claim.equal_to``'s."""
    metric, other = claim.equal_metric, claim.equal_to
    values = means(ok, [t for t in (claim.best, other) if t in usable], metric)
    if other not in values or claim.best not in values:
        return None
    ratio = values[claim.best] / values[other]
    equal = abs(ratio - 1) <= EQUAL_TOLERANCE
    digits = SPECS[metric].digits
    word = "equal" if equal else "not equal"
    return equal, (
        f"{SPECS[metric].label} {word} to {other}'s within ±{EQUAL_TOLERANCE:.0%} ({values[claim.best]:.{digits}f} vs "
        f"{values[other]:.{digits}f}, ratio {ratio:.2f})"
    )


def caveats(
    group: Group,
    study: StudyRun,
    rows: pd.DataFrame,
    ok: pd.DataFrame,
    present: list[str],
    configs: Mapping[str, dict],
    flagged: Mapping[str, str],
) -> list[str]:
    """Every way this run differs from the study's: length, data size, seeds, hardware, settings, gaps, flags."""
    out = []
    epochs = sorted({int(e) for e in ok["epochs"].dropna()})
    if any(e < study.epochs for e in epochs):
        out.append(f"**Shorter** than the study: {', '.join(map(str, epochs))} epochs (the study: {study.epochs}).")
    if "budget_seconds" in ok and ok["budget_seconds"].notna().any():
        budgets = ", ".join(f"{b:g}" for b in sorted(ok["budget_seconds"].dropna().unique()))
        out.append(
            f"**Equal time, not equal epochs**: a training budget of {budgets} s per cell (the study: equal epochs)."
        )
    for column, theirs, what in (("n_train", study.n_train, "training"), ("n_test", study.n_test, "test")):
        sizes = sorted({int(n) for n in ok[column].dropna()}) if column in ok else []
        if any(n < theirs for n in sizes):
            out.append(
                f"**Smaller** than the study: {', '.join(f'{n:,}' for n in sizes)} {what} images (the study: {theirs:,})."
            )
    seeds = int(ok["seed"].nunique())
    out.append(
        f"Seeds: ours {seeds}, the study {study.seeds}. The study's value is one draw with a spread we cannot see, "
        "so a published value outside our interval need not mean the runs disagree."
    )
    devices = ", ".join(sorted({str(d) for d in ok["device"].dropna()}))
    out.append(
        f"Train time: ours on {devices or 'unknown'}, the study's on {study.hardware}; the ratio measures the hardware as much as the technique."
    )
    out += setting_differences(present, configs)
    gaps = [f"{t} ({absent(t, rows, flagged)})" for (d, t) in ANCHORS if d == group.dataset and t not in present]
    out += [f"Not compared, no usable result here: {', '.join(gaps)}."] if gaps else []
    out += [f"Flagged, no claim: {t} ({why})." for t, why in flagged.items() if t in present]
    out += [f"Protocol: {text}." for text in PROTOCOL_DIFFERENCES]
    out += measured_lines(ok, present)
    return out


def lookup(config: dict, dotted: str) -> Any:
    """A dotted key of a nested config, MISSING where absent."""
    value: Any = config
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def same(ours: Any, theirs: Any) -> bool:
    """Config values equal up to int/float and tuple/list spelling."""
    if isinstance(theirs, (list, tuple)) and isinstance(ours, (list, tuple)):
        return len(ours) == len(theirs) and all(same(a, b) for a, b in zip(ours, theirs))
    if isinstance(theirs, (int, float)) and not isinstance(theirs, bool) and isinstance(ours, (int, float)):
        return math.isclose(float(ours), float(theirs))
    return bool(ours == theirs)


def setting_differences(techniques: list[str], configs: Mapping[str, dict]) -> list[str]:
    """One line per setting where our cells differ from the study's, naming the techniques ('every technique' when
    all of them) and what the difference does."""
    differ: dict[tuple[str, str], list[str]] = {}
    unknown = [t for t in techniques if not configs.get(t)]
    for technique in techniques:
        config = configs.get(technique) or {}
        for key, theirs in {**STUDY_SETTINGS, **TECHNIQUE_SETTINGS.get(technique, {})}.items():
            ours = lookup(config, key)
            if config and ours is not MISSING and not same(ours, theirs):
                differ.setdefault((key, f"{ours} (the study: {theirs})"), []).append(technique)
    known = [t for t in techniques if t not in unknown]
    out = []
    for (key, text), who in differ.items():
        whom = "every technique" if who == known and len(who) > 1 else ", ".join(who)
        effect = f"; {SETTING_EFFECTS[key]}" if key in SETTING_EFFECTS else ""
        out.append(f"**Configured differently**: {key} {text} for {whom}{effect}.")
    if unknown:
        out.append(f"Settings not compared for {', '.join(unknown)}: no cell config at hand.")
    return out


def measured_lines(ok: pd.DataFrame, techniques: list[str]) -> list[str]:
    """What techniques measured while training (the rows' ``measured`` field), as means over seeds."""
    if "measured" not in ok:
        return []
    out = []
    for technique in techniques:
        found = [m for m in ok.loc[ok["technique"] == technique, "measured"] if isinstance(m, dict) and m]
        if found:
            keys = list(dict.fromkeys(k for m in found for k in m))
            values = ", ".join(f"{k} {np.mean([m[k] for m in found if k in m]):.4g}" for k in keys)
            out.append(f"Measured by {technique} while training (mean over {len(found)} seeds): {values}.")
    return out


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
