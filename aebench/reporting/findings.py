"""The "what this run shows" paragraph of one group, generated from its numbers: the best technique per metric
with its test against the baseline, what was left out of every claim and why, the best at equal training time (no
winner named where the times are not, or not known to be, like-for-like), whether its times compare, and what
each reference's numbers mean. Only claimable techniques (no reference, no flag on the metric) rank."""

from __future__ import annotations

import pandas as pd

from aebench.reporting.conditions import time_caveat, time_standing
from aebench.reporting.curves import at_equal_time
from aebench.reporting.groups import Group
from aebench.reporting.sanity import ALL, Flags
from aebench.reporting.statistics import verdict
from aebench.results.schema import QUALITY, SPECS
from aebench.results.summary import finished

CONTENDERS = ("baseline", "compared", "unknown")


def value(metric: str, x: float) -> str:
    return f"{x:.{SPECS[metric].digits}f}"


def roles_of(rows: pd.DataFrame) -> dict[str, str]:
    return dict(rows.groupby("technique", sort=False)["role"].first())


def claimable(stats: pd.DataFrame, metric: str, roles: dict[str, str], flags: Flags) -> pd.DataFrame:
    """The metric's records of techniques that may rank on it, best first."""
    mine = stats[stats["metric"] == metric].dropna(subset="mean")
    keep = [roles.get(t) in CONTENDERS and flags.claimable(t, metric) for t in mine["technique"]]
    return mine[keep].sort_values("mean", ascending=SPECS[metric].lower_is_better, kind="stable")


def best_sentence(stats: pd.DataFrame, metric: str, roles: dict[str, str], flags: Flags, baseline: str | None) -> str:
    """'MSE: **X** (0.0049), +0.0012 vs the baseline: real (…)' for the best claimable technique on a metric."""
    spec = SPECS[metric]
    ranked = claimable(stats, metric, roles, flags).to_dict("records")
    if not ranked:
        return f"{spec.label}: no technique can be ranked (every one is a reference or flagged)"
    best = ranked[0]
    head = f"{spec.label}: **{best['technique']}** ({value(metric, best['mean'])})"
    if len(ranked) == 1:
        return f"{head}, the only technique that can be ranked on it"
    if best["technique"] != baseline:
        if baseline is None:
            return f"{head}; no baseline to test it against"
        return f"{head}, {best['diff_mean']:+.{spec.digits}f} vs {baseline}: {verdict(best)}"
    runner = ranked[1]
    return (
        f"{head}; the next, {runner['technique']}, differs by {runner['diff_mean']:+.{spec.digits}f}: {verdict(runner)}"
    )


def best_line(
    stats: pd.DataFrame, metrics: list[str], roles: dict[str, str], flags: Flags, baseline: str | None
) -> str:
    """The best per metric; where one technique alone can be ranked on every metric, that, with its values."""
    alone = {tuple(claimable(stats, m, roles, flags)["technique"]) for m in metrics}
    if alone == {()}:
        return "No best claim: no technique here can be ranked (each is a reference or flagged)."
    if len(alone) == 1 and len(next(iter(alone))) == 1:
        technique = next(iter(alone))[0]
        mine = stats[stats["technique"] == technique].set_index("metric")["mean"]
        values = ", ".join(f"{SPECS[m].label} {value(m, mine[m])}" for m in metrics)
        others = [
            f"{t}, {'a reference' if roles.get(t) == 'reference' else 'flagged'}"
            for t in dict.fromkeys(stats["technique"])
            if t != technique
        ]
        return (
            f"No best claim: **{technique}** is the only technique here that can be ranked "
            f"({'; '.join(others)}); {values}."
        )
    best = [best_sentence(stats, m, roles, flags, baseline) for m in metrics]
    return f"Best technique per metric (references and flagged techniques excluded): {'; '.join(best)}."


def setting_phrase(group: Group, rows: pd.DataFrame) -> str:
    """'at equal epochs (3 epochs, 3 seeds; 60,000 training and 10,000 test images)', or at equal time."""
    seeds = rows.loc[rows["status"] == "ok", "seed"].nunique()
    s = group.setting
    sizes = "; ".join(f"{v} {k}" for k, v in s.facts() if k in ("training images", "test images"))
    tail = f"{seeds} seed{'s' * (seeds != 1)}; {sizes}"
    if s.budget_seconds is not None:
        return f"at equal training time ({s.length()}, {tail})"
    return f"at equal epochs ({s.length()}, {tail})"


def flagged_sentence(flags: Flags) -> str | None:
    """Who is left out of which claims, in words (the reasons stand under the table)."""
    if not flags.flags:
        return None
    parts = []
    for who in dict.fromkeys(f.technique for f in flags.flags):
        mine = [f for f in flags.flags if f.technique == who]
        metrics = frozenset().union(*(f.metrics for f in mine))
        what = "every claim" if metrics == ALL else f"{', '.join(SPECS[m].label for m in sorted(metrics))} claims"
        parts.append(f"{who or 'every technique'} from {what} ({'; '.join(f.label for f in mine)})")
    return f"Left out, flagged (the reasons stand under the table): {'; '.join(parts)}."


def equal_time_sentence(
    points: pd.DataFrame, group: Group, roles: dict[str, str], flags: Flags, standing: str | None = None
) -> str | None:
    """The lowest test MSE when the first claimable technique has finished training, read off the curves;
    ``standing``: where the times are not (known to be) like-for-like, the words that say so, and then the
    values are listed with no winner named."""
    ranked = [t for t in dict.fromkeys(points.loc[points["group"] == group.label, "technique"])
              if roles.get(t) in CONTENDERS and flags.claimable(t, "mse")]  # fmt: skip
    found = at_equal_time(points[points["technique"].isin(ranked)], group.label)
    if found is None or found[1].dropna().empty or len(ranked) < 2:
        return None
    horizon, mse = found
    reached = mse.dropna()
    late = [t for t, v in mse.items() if pd.isna(v)]
    listing = ", ".join(f"{t} {value('mse', v)}" for t, v in reached.items())
    behind = f"; no result yet by then: {', '.join(late)}" if late else ""
    head = (
        f"At equal training time, read off the time-to-quality curves at {horizon:.0f} s (when the first technique "
        f"finishes; means over seeds, no test; references and flagged techniques left out)"
    )
    if standing:
        return f"{head}: test MSE {listing}{behind}; the times are {standing}, so this is no ranking."
    return f"{head}: lowest test MSE **{reached.index[0]}** ({listing}{behind})."


def time_sentence(rows: pd.DataFrame) -> str | None:
    """Where the group's rows were timed under unequal (or unrecorded) conditions: that its time comparisons are
    not like-for-like (or not known to be)."""
    caveat = time_caveat(finished(rows))
    return f"Time comparisons here (train time, images/s, equal training time) are {caveat}." if caveat else None


def reference_sentence(
    stats: pd.DataFrame, rows: pd.DataFrame, technique: str, flags: Flags, baseline: str | None
) -> str:
    """What a reference's MSE means here: lossless (flagged), or how the baseline compares with it."""
    record = stats[(stats["metric"] == "mse") & (stats["technique"] == technique)].iloc[0].to_dict()
    latent = rows.loc[rows["technique"] == technique, "setting"].iloc[0].latent
    head = f"{technique} (a reference, latent {latent if latent is not None else 'unknown'}): MSE {value('mse', record['mean'])}"
    if flags.of(technique):
        return (
            f"{head}; flagged ({'; '.join(f.label for f in flags.of(technique))}), so nothing is compared with it here."
        )
    if baseline is None or pd.isna(record["diff_mean"]):
        return f"{head}; no baseline to compare it with."
    if record["note"]:
        return f"{head}; {baseline} against it: {verdict(record)}."
    gap = f"{baseline} minus {technique} on MSE {-record['diff_mean']:+.{SPECS['mse'].digits}f}, {verdict(record)}"
    if not record["significant"]:
        outcome = f"{baseline} and this reference do not differ significantly"
    elif record["diff_mean"] > 0:
        outcome = f"{baseline} beats this reference"
    else:
        outcome = f"{baseline} does not beat this reference, it is worse"
    return f"{head}; {outcome}: {gap}."


def findings(group: Group, rows: pd.DataFrame, stats: pd.DataFrame, points: pd.DataFrame, flags: Flags) -> list[str]:
    """The findings for one results table: a heading line, then one line per finding."""
    if stats.empty:
        return []
    roles = roles_of(rows[rows["status"] == "ok"])
    baseline = next((t for t, r in roles.items() if r == "baseline"), None)
    metrics = [m for m in QUALITY if (stats["metric"] == m).any()]
    lines = [best_line(stats, metrics, roles, flags, baseline)]
    lines += [s for s in (flagged_sentence(flags),) if s]
    if group.setting.budget_seconds is None:  # a budget run is at equal time already
        standing = time_standing(finished(rows))
        lines += [s for s in (equal_time_sentence(points, group, roles, flags, standing),) if s]
    lines += [s for s in (time_sentence(rows),) if s]
    lines += [reference_sentence(stats, rows, t, flags, baseline) for t, r in roles.items() if r == "reference"]
    return [f"**{group.label}**, {setting_phrase(group, rows)}:", *lines]
