"""The study's headline claims checked on a run's rows: **holds**, **does not hold** or **untested here**, with the
means, the paired test against the runner-up (or the winner) and what the test cannot back."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from aebench.reporting.anchors import ANCHORS, EQUAL_TOLERANCE, Claim, StudyRun
from aebench.reporting.statistics import ALPHA, NO_SPREAD, format_p, paired, per_seed
from aebench.results.schema import SPECS


class Barring(Protocol):
    """The report's sanity flags as this module reads them: why no claim may rest on a technique's metric."""

    def why_not(self, technique: str, metric: str) -> str | None: ...


class NoFlags:
    """No technique flagged."""

    def why_not(self, technique: str, metric: str) -> str | None:
        return None


@dataclass
class Scope:
    """One group's rows as the comparison reads them: the study's techniques that finished here (``present``),
    the reference techniques (rows' ``role``) and the flags."""

    dataset: str
    rows: pd.DataFrame
    ok: pd.DataFrame
    flags: Barring = field(default_factory=NoFlags)

    @property
    def present(self) -> list[str]:
        return [t for t in dict.fromkeys(self.ok["technique"]) if (self.dataset, t) in ANCHORS]

    @property
    def references(self) -> set[str]:
        return set(self.ok.loc[self.ok["role"] == "reference", "technique"]) if "role" in self.ok else set()

    def usable(self, metric: str) -> list[str]:
        """The study's techniques that may carry a claim on ``metric``: finished, not references, not flagged."""
        return [t for t in self.present if t not in self.references and not self.flags.why_not(t, metric)]

    def absent(self, technique: str, metric: str | None = None) -> str:
        """Why a technique has no usable result (on ``metric``): flagged, skipped or failed with the reason, or not run."""
        if technique in self.present:
            flag = self.flags.why_not(technique, metric) if metric else None
            return flag or ("a reference" if technique in self.references else "usable")
        mine = self.rows[self.rows["technique"] == technique]
        if mine.empty:
            return "not run"
        last = mine.iloc[-1]
        return f"{last['status']}: {last['reason']}" if last["status"] != "ok" else "no finished seed"

    def means(self, techniques: list[str], metric: str) -> dict[str, float]:
        """Mean over seeds per technique, for those with a value."""
        out = {t: float(per_seed(self.ok, t, metric).mean()) for t in techniques}
        return {t: v for t, v in out.items() if not math.isnan(v)}


def ranked(values: dict[str, float], metric: str) -> list[str]:
    """Techniques best first on ``metric``."""
    return sorted(values, key=values.get, reverse=not SPECS[metric].lower_is_better)


def rank_evidence(claim: Claim, scope: Scope, metric: str) -> tuple[bool, str, str] | str:
    """Whether ``claim.best`` has the best mean on ``metric``, the evidence against the runner-up (or the winner),
    and what the paired test cannot back; or, as a string, why it cannot be ranked."""
    spec = SPECS[metric]
    usable = scope.usable(metric)
    if claim.best not in usable:
        return f"no usable {spec.label} of {claim.best} ({scope.absent(claim.best, metric)})"
    values = scope.means(usable, metric)
    if claim.best not in values or len(values) < 2:
        return f"no other technique of the study with a usable {spec.label}"
    order = ranked(values, metric)
    best = order[0] == claim.best
    other = order[1] if best else order[0]
    test = paired(per_seed(scope.ok, claim.best, metric), per_seed(scope.ok, other, metric))
    n = test.difference.n
    seeds = f"{n} paired seed{'s' if n != 1 else ''}"
    ours, theirs = f"{values[claim.best]:.{spec.digits}f}", f"{values[other]:.{spec.digits}f}"
    test_text = f"Δ {test.difference.mean:+.{spec.digits}f}, p={format_p(test.p_value)}, {seeds}"
    text = (
        f"{spec.label}: {claim.best} best at {ours}, next {other} {theirs} ({test_text})"
        if best
        else f"{spec.label}: {other} {theirs} beats {claim.best} {ours} ({test_text})"
    )
    doubt = (
        f"{spec.label} not testable ({NO_SPREAD})"
        if test.no_spread
        else f"{spec.label} not testable with {seeds}"
        if math.isnan(test.p_value)
        else f"{spec.label} against {other} not significant at p < {ALPHA}"
        if test.p_value >= ALPHA
        else ""
    )
    return best, text, doubt


def equal_evidence(claim: Claim, scope: Scope) -> tuple[bool, str] | str:
    """Whether ``claim.best``'s mean on ``claim.equal_metric`` lies within EQUAL_TOLERANCE of ``claim.equal_to``'s;
    or, as a string, why it cannot be checked."""
    metric, other = claim.equal_metric, claim.equal_to
    values = scope.means([t for t in (claim.best, other) if t in scope.usable(metric)], metric)
    if other not in values or claim.best not in values:
        missing = other if other not in values else claim.best
        return f"no usable {SPECS[metric].label} of {missing} ({scope.absent(missing, metric)})"
    ratio = values[claim.best] / values[other]
    equal = abs(ratio - 1) <= EQUAL_TOLERANCE
    digits = SPECS[metric].digits
    word = "equal" if equal else "not equal"
    return equal, (
        f"{SPECS[metric].label} {word} to {other}'s within ±{EQUAL_TOLERANCE:.0%} ({values[claim.best]:.{digits}f} vs "
        f"{values[other]:.{digits}f}, ratio {ratio:.2f})"
    )


def claim_sentence(claim: Claim, study: StudyRun, scope: Scope) -> str:
    """'The study on MNIST: "…". **Holds** / **Does not hold** / **Untested here**: the evidence.'"""
    head = f'The study on {study.name}: "{claim.words}".'
    verdicts, evidence, doubts = [], [], []
    for metric in claim.metrics:
        found = rank_evidence(claim, scope, metric)
        if isinstance(found, str):
            return f"{head} **Untested here**: {found}."
        verdicts.append(found[0])
        evidence.append(found[1])
        doubts += [found[2]] if found[2] else []
    if claim.equal_metric is not None and claim.equal_to is not None:
        equal = equal_evidence(claim, scope)
        if isinstance(equal, str):
            return f"{head} **Untested here**: {equal}."
        verdicts.append(equal[0])
        evidence.append(equal[1])
    verdict = "Holds" if all(verdicts) else "Does not hold"
    margin = f" (by the means; {'; '.join(doubts)})" if doubts else ""
    ranked_among = list(dict.fromkeys(t for m in claim.metrics for t in scope.usable(m)))
    missing = [t for (d, t) in ANCHORS if d == claim.dataset and t not in ranked_among]
    among = f" Ranked among {', '.join(ranked_among)}; left out: {', '.join(missing)}." if missing else ""
    return f"{head} **{verdict}**{margin}: {'; '.join(evidence)}.{among}"
