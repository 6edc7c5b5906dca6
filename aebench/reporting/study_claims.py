"""The study's headline claims checked on a run's rows: **holds**, **does not hold** or **untested here**, with the
means, the paired test against the runner-up (or the winner) and what the test cannot back."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

import pandas as pd

from aebench.reporting.anchors import ANCHORS, EQUAL_TOLERANCE, Claim, StudyRun
from aebench.reporting.statistics import ALPHA, NO_SPREAD, Paired, format_p, holm, paired, per_seed
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


@dataclass(frozen=True)
class Ranking:
    """The claimed technique's place on one metric: whether it has the best mean, against whom it is tested (the
    runner-up, or the winner) and the paired test."""

    metric: str
    best: bool
    claimed: str
    other: str
    values: dict[str, float]
    test: Paired

    def text(self, adjusted: float, tests: int) -> str:
        """'MSE: baseline best at …, next … (Δ baseline − other …, p=…, Holm p=…, 3 paired seeds)'."""
        spec = SPECS[self.metric]
        mine, theirs = (f"{self.values[t]:.{spec.digits}f}" for t in (self.claimed, self.other))
        holm_text = (
            f", Holm p={format_p(adjusted)} over {tests} measures" if tests > 1 and math.isfinite(adjusted) else ""
        )
        test = (
            f"Δ {self.claimed} − {self.other} {self.test.difference.mean:+.{spec.digits}f}, "
            f"p={format_p(self.test.p_value)}{holm_text}, {self.seeds}"
        )
        if self.best:
            return f"{spec.label}: {self.claimed} best at {mine}, next {self.other} {theirs} ({test})"
        return f"{spec.label}: {self.other} {theirs} beats {self.claimed} {mine} ({test})"

    @property
    def seeds(self) -> str:
        n = self.test.difference.n
        return f"{n} paired seed{'s' if n != 1 else ''}"

    def doubt(self, adjusted: float) -> str:
        """What the paired test cannot back ('' when its Holm-adjusted p is below ALPHA)."""
        label = SPECS[self.metric].label
        if self.test.no_spread:
            return f"{label} not testable ({NO_SPREAD})"
        if math.isnan(adjusted):
            return f"{label} not testable with {self.seeds}"
        return f"{label} against {self.other} not significant at p < {ALPHA}" if adjusted >= ALPHA else ""


def rank_evidence(claim: Claim, scope: Scope, metric: str) -> Ranking | str:
    """Where ``claim.best`` ranks on ``metric`` and its paired test; or, as a string, why it cannot be ranked."""
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
    return Ranking(metric, best, claim.best, other, values, test)


def adjusted_p(rankings: list[Ranking]) -> list[float]:
    """Holm-adjusted p-values over the claim's measures (one family: the claim is their conjunction); NaN untested."""
    tested = [i for i, r in enumerate(rankings) if math.isfinite(r.test.p_value)]
    out = [math.nan] * len(rankings)
    for i, p in zip(tested, holm([rankings[i].test.p_value for i in tested]), strict=True):
        out[i] = p
    return out


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


def claim_sentence(
    claim: Claim, study: StudyRun, scope: Scope, differing: Mapping[str, list[str]] | None = None
) -> str:
    """'The study on MNIST: "…". **Holds** / **Does not hold** / **Untested here**: the evidence.'

    A claim that holds is qualified by every measure its paired tests cannot back; one that does not hold names the
    measures whose tests show it fail (Holm-adjusted over the claim's measures), or says it fails by the means only.
    ``differing``: per technique, the settings its cells set otherwise than the study; the sentence names those of
    the techniques its evidence sets side by side."""
    head = f'The study on {study.name}: "{claim.words}".'
    rankings = []
    for metric in claim.metrics:
        found = rank_evidence(claim, scope, metric)
        if isinstance(found, str):
            return f"{head} **Untested here**: {found}."
        rankings.append(found)
    adjusted = adjusted_p(rankings)
    evidence = [r.text(p, len(rankings)) for r, p in zip(rankings, adjusted, strict=True)]
    kind = "Holm p" if len(rankings) > 1 else "p"
    verdicts = [
        (r.best, r.doubt(p), f"{SPECS[r.metric].label} ({kind}={format_p(p)})")
        for r, p in zip(rankings, adjusted, strict=True)
    ]
    if claim.equal_metric is not None and claim.equal_to is not None:
        equal = equal_evidence(claim, scope)
        if isinstance(equal, str):
            return f"{head} **Untested here**: {equal}."
        outside = f"{SPECS[claim.equal_metric].label} outside ±{EQUAL_TOLERANCE:.0%} of {claim.equal_to}'s"
        verdicts.append((equal[0], "", outside))
        evidence.append(equal[1])
    ranked_among = list(dict.fromkeys(t for m in claim.metrics for t in scope.usable(m)))
    missing = [t for (d, t) in ANCHORS if d == claim.dataset and t not in ranked_among]
    among = f" Ranked among {', '.join(ranked_among)}; left out: {', '.join(missing)}." if missing else ""
    compared = [claim.best, *(r.other for r in rankings), *([claim.equal_to] if claim.equal_to else [])]
    unlike = [f"{t}: {', '.join(keys)}" for t in dict.fromkeys(compared) if (keys := (differing or {}).get(t))]
    configured = f" Configured otherwise than the study's (see above): {'; '.join(unlike)}." if unlike else ""
    return f"{head} {verdict_words(verdicts)}: {'; '.join(evidence)}.{configured}{among}"


def verdict_words(verdicts: list[tuple[bool, str, str]]) -> str:
    """'**Holds**' or '**Does not hold**' with what backs it, from each measure's (holds, doubt, name-if-backed)."""
    if all(holds for holds, _, _ in verdicts):
        doubts = [doubt for _, doubt, _ in verdicts if doubt]
        return f"**Holds** (by the means; {'; '.join(doubts)})" if doubts else "**Holds**"
    failing = [(doubt, name) for holds, doubt, name in verdicts if not holds]
    shown = [name for doubt, name in failing if not doubt]
    weak = [doubt for doubt, _ in failing if doubt]
    if not shown:
        return f"**Does not hold** (by the means only; {'; '.join(weak)})"
    also = f"; by the means only on the rest: {'; '.join(weak)}" if weak else ""
    return f"**Does not hold** (shown on {', '.join(shown)}{also})"
