"""Every verdict sentence of the report, written from the statistics frame (and the study's comparison frame):
nothing here computes a statistic. A technique is 'best' only where the frame's standing says a test backs it."""

from __future__ import annotations

import math

import pandas as pd

from aebench.reporting.cost import COST, FIT
from aebench.reporting.document import PROSE
from aebench.reporting.rows import in_order, text
from aebench.reporting.stats import ALPHA
from aebench.reporting.study.anchors import EQUAL_TOLERANCE
from aebench.results.schema import QUALITY, SPECS

AXIS_MEASURES = ("mse", "accuracy")  # the measures the axis lines speak of (the figure and table show every one)


def number(metric: str, x: float) -> str:
    return "–" if x is None or math.isnan(x) else f"{x:.{SPECS[metric].digits}f}"


def mean_sd(metric: str, mean: float, sd: float) -> str:
    return number(metric, mean) + ("" if math.isnan(sd) else f" ± {number(metric, sd)}")


def p_text(p: float) -> str:
    return "–" if math.isnan(p) else "<0.001" if p < 0.001 else f"{p:.3f}"


def test_words(r: dict, caveat: bool = True) -> str:
    """'shown (Holm p 0.012)', 'not shown (…)', 'not tested (why)'; ``caveat``: the time caveat added."""
    if r["note"]:
        return f"not tested ({r['note']})"
    caveat = f"; times {r['caveat']}" if r["caveat"] and caveat else ""
    return f"{'shown' if r['significant'] else 'not shown'} (Holm p {p_text(r['p_holm'])}{caveat})"


def standing_words(mine: pd.DataFrame) -> str:
    """One metric: 'baseline best', 'tie: baseline, feature_loss', or why nothing is ranked."""
    best = mine[mine["standing"] == "best"]
    if len(best):
        return f"**{best['technique'].iloc[0]}** best"
    tied = mine[mine["standing"] == "tie"].sort_values("mean", ascending=SPECS[mine["metric"].iloc[0]].lower_is_better)
    return f"tie: {', '.join(tied['technique'])}" if len(tied) else "no ranking (under two techniques may be ranked)"


def best_items(stats: pd.DataFrame, metrics: tuple[str, ...] = QUALITY) -> list[str]:
    """'MAE: tie: baseline, feature_loss', 'MSE: **baseline** best', one per metric the table has."""
    return [f"{SPECS[m].label}: {standing_words(stats[stats['metric'] == m])}" for m in metrics
            if (stats["metric"] == m).any()]  # fmt: skip


def best_rule(stats: pd.DataFrame) -> str:
    return PROSE.best_rule(int(stats["lead_tests"].max()) if len(stats) else 0, ALPHA)


def best_line(stats: pd.DataFrame, metrics: tuple[str, ...] = QUALITY) -> str:
    return f"{'; '.join(best_items(stats, metrics))} ({best_rule(stats)})."


def short_line(stats: pd.DataFrame) -> str:
    """A table in a few words: where a technique is best (a test backs it), else ties or no ranking."""
    best = stats[(stats["standing"] == "best") & stats["metric"].isin(QUALITY)]
    if len(best):
        return "; ".join(f"**{t}** best on {SPECS[m].label}" for t, m in zip(best["technique"], best["metric"]))
    return "ties on every measure" if (stats["standing"] == "tie").any() else "nothing ranked (under two techniques)"


def ratio(r: dict) -> str:
    """'0.815× [0.777, 0.854]': a cost ratio with its 95 % CI."""
    if math.isnan(r["mean"]):
        return "not measured here"
    return f"{r['mean']:#.3g}× [{r['ci_low']:#.3g}, {r['ci_high']:#.3g}]"


def cost_words(mine: pd.DataFrame) -> str:
    """A technique's controlled cost ratio with its CI, bold where it excludes 1; fits and one-offs in seconds."""
    out = []
    for r in mine.to_dict("records"):
        if r["metric"] != COST:
            out.append(f"{'fit' if r['metric'] == FIT else 'one-off'} {r['mean']:.3g} s ({r['note']})")
        elif r["role"] == "baseline":
            out.insert(0, f"the unit (against itself {ratio(r)})")
        else:
            out.insert(0, f"**{ratio(r)} {r['standing']}**" if r["significant"] else f"≈ baseline ({ratio(r)})")
    return "; ".join(out)


def cost_note(stats: pd.DataFrame) -> str:
    """Under a table with a cost column: how it was measured and on what machine, said once."""
    machines = "; ".join(dict.fromkeys(stats["machine"].dropna()))
    caveats = stats.loc[stats["caveat"] != "", "caveat"]
    return PROSE.our_cost_note(machines, f", {caveats.iloc[0]}" if len(caveats) else "")


def read_off_line(frame: pd.DataFrame, stats: pd.DataFrame) -> str:
    if not len(frame):
        return ""
    base = stats[(stats["metric"] == COST) & (stats["role"] == "baseline")].iloc[0]
    ranks = [f"{r['rank']}. {r['technique']} {r['test_mse']:.6f} (epoch {r['epoch']} of {r['epochs']})"
             for r in frame.to_dict("records")]  # fmt: skip
    left = stats.loc[(stats["metric"] != COST) & ~stats["technique"].isin(stats.loc[stats["metric"] == COST,
                     "technique"]), "technique"].drop_duplicates()  # fmt: skip
    apart = f"; without a step ratio, not placed: {', '.join(left)}" if len(left) else ""
    return PROSE.read_off(frame["horizon"].iloc[0], frame["time"].iloc[0], base["seconds"], ", ".join(ranks), apart)


def listed(values) -> str:
    return ", ".join(values) or "no point"


def reference(series: pd.DataFrame) -> str:
    """What a series' points are tested against, in words."""
    refs = series.loc[series["role"] == "reference", "technique"]
    return refs.iloc[0] if len(refs) else f"itself at {text(in_order(series)['point'].iloc[0])}"


def axis_lines(series: pd.DataFrame) -> list[str]:
    """Per technique of a series: the points where it is better, worse or untested against the reference (the
    reference technique, else the technique's own first point)."""
    lines, axis, ref, series = [], series["axis"].iloc[0], reference(series), in_order(series)
    for technique, mine in series[series["ref_note"] != "the reference"].groupby("technique", sort=False):
        parts = []
        for metric in (m for m in AXIS_MEASURES if (mine["metric"] == m).any()):
            r = mine[mine["metric"] == metric]
            better = r["ref_diff"] < 0 if SPECS[metric].lower_is_better else r["ref_diff"] > 0
            at = r["point"].map(text)
            part = f"{SPECS[metric].label} better at {listed(at[r['ref_significant'] & better])}"
            part += f", worse at {listed(at[worse])}" if (worse := r["ref_significant"] & ~better).any() else ""
            part += f", untested at {listed(at[r['ref_note'] != ''])}" if (r["ref_note"] != "").any() else ""
            parts.append(part)
        tests = int(mine["ref_tests"].max()) if mine["ref_tests"].notna().any() else 0
        lines.append(f"**{technique}** against {ref}: {'; '.join(parts)} (paired tests, Holm over {tests} "
                     f"points of {axis}, p < {ALPHA}).")  # fmt: skip
    return lines


def claim_verdict(claim, standings: dict[str, pd.DataFrame]) -> str:
    """A claim of the study against our standings: holds, does not hold, or not shown."""
    lines, holds = [], True
    for metric in claim.metrics:
        mine = standings[metric]
        best = mine.loc[mine["standing"] == "best", "technique"]
        tied = set(mine.loc[mine["standing"] == "tie", "technique"])
        if len(best) and best.iloc[0] != claim.best:
            return f'"{claim.words}": **does not hold**: {best.iloc[0]} is best on {SPECS[metric].label}.'
        holds &= bool(len(best))
        if not len(best):
            lines.append(f"{SPECS[metric].label} " + (f"a tie ({', '.join(sorted(tied))})" if tied else "not ranked"))
    if claim.equal_metric:
        means = standings[claim.equal_metric].set_index("technique")["mean"]
        ratio = means.get(claim.best, math.nan) / means.get(claim.equal_to, math.nan)
        if not abs(ratio - 1) <= EQUAL_TOLERANCE:
            return f'"{claim.words}": **does not hold**: {SPECS[claim.equal_metric].label} ratio {ratio:.2f}.'
    if holds:
        return f'"{claim.words}": **holds** (each backed by a paired test).'
    return f'"{claim.words}": **not shown**: {"; ".join(lines)}.'


def so_far(comp) -> str:
    """' so far (2 of its 6 techniques judged here)' while some of the study's techniques have no rows."""
    judged = comp.frame.loc[comp.frame["inside"].notna(), "technique"].nunique()
    return f" so far ({judged} of its {len(comp.present) + len(comp.absent)} techniques judged here)" * bool(
        comp.absent
    )


def study_verdict(comp, short: bool = False) -> str:
    """One sentence: does the study's table reproduce (its values inside our prediction intervals), and how far off;
    ``short``: the counts and gaps alone."""
    frame = comp.frame[comp.frame["inside"].notna()]
    inside, total = int(frame["inside"].sum()), len(frame)
    if total == 0:
        return PROSE.unjudged(comp.study.name, int(comp.frame["n"].max()) if len(comp.frame) else 0)
    parts = []
    for metric in ("mae", "mse", "accuracy"):
        mine = frame[frame["metric"] == metric]
        if len(mine):
            low, high = (round(x, 1) + 0.0 for x in (mine["diff"].min(), mine["diff"].max()))  # as shown; no -0.0
            unit = mine["unit"].iloc[0]
            span = f"{low:+.1f}" if f"{low:+.1f}" == f"{high:+.1f}" else f"{low:+.1f} to {high:+.1f}"
            every = " for every technique" if len(mine) > 1 else ""
            side = f" (ours higher{every})" if low > 0 else f" (ours lower{every})" if high < 0 else ""
            parts.append(f"{SPECS[metric].label} {span} {unit}{side}")
    if short:
        return f"{inside} of {total} values inside our prediction interval; {', '.join(parts)}"
    word = "reproduces" if inside == total else "partly reproduces" if inside >= total / 2 else "does not reproduce"
    return PROSE.reproduces(comp.study.name, word + so_far(comp), inside, total, ", ".join(parts))


def study_cost_verdict(comp) -> str:
    cost = comp.cost[comp.cost["inside"].notna()]
    inside = list(cost.loc[cost["inside"].astype(bool), "technique"])
    far = cost.iloc[(cost["ours"] / cost["study"]).map(lambda x: abs(math.log(x))).argmax()]
    return PROSE.study_cost(len(cost), len(inside), f" ({', '.join(inside)})" if inside else "", far)
