"""The "what this run shows" paragraph, generated from the numbers: the best technique per metric (with its paired
test against the baseline), the best at equal training time, the study's orderings, and what PCA's MSE means."""

from __future__ import annotations

import pandas as pd

from aebench.report.anchors import ANCHORS
from aebench.report.curves import at_equal_time
from aebench.report.statistics import BASELINE, verdict
from aebench.report.tables import REFERENCE_TECHNIQUES, Group
from aebench.results.schema import QUALITY, SPECS

STUDY_DATASETS = {"mnist": "MNIST", "cifar10": "CIFAR-10"}
NEAREST_STUDY = {"fashion-mnist": "mnist"}  # grey 28 px clothing images: the study's MNIST setting


def value(metric: str, x: float) -> str:
    return f"{x:.{SPECS[metric].digits}f}"


def best_sentence(stats: pd.DataFrame, metric: str) -> str | None:
    """'MSE: X (0.0049), Δ vs baseline …, real (p=…)' for the best non-reference technique on a metric."""
    mine = stats[(stats["metric"] == metric) & ~stats["technique"].isin(REFERENCE_TECHNIQUES)].dropna(subset="mean")
    if mine.empty:
        return None
    spec = SPECS[metric]
    ranked = mine.sort_values("mean", ascending=spec.lower_is_better).to_dict("records")
    best = ranked[0]
    head = f"{spec.label}: **{best['technique']}** ({value(metric, best['mean'])})"
    if best["technique"] != BASELINE:
        if pd.isna(best["diff_mean"]):
            return f"{head}; no {BASELINE} to test it against"
        return f"{head}, {best['diff_mean']:+.{spec.digits}f} vs {BASELINE}: {verdict(best)}"
    if len(ranked) == 1:
        return head
    runner = ranked[1]
    return (
        f"{head}; the next, {runner['technique']}, differs by {runner['diff_mean']:+.{spec.digits}f}: {verdict(runner)}"
    )


def setting(rows: pd.DataFrame) -> str:
    """'at equal epochs (3 epochs, 3 seeds)' or 'at equal training time (a budget of 60 s, 3 seeds)'."""
    ok = rows[rows["status"] == "ok"]
    seeds = ok["seed"].nunique()
    budgets = sorted(ok["budget_seconds"].dropna().unique()) if "budget_seconds" in ok else []
    seeds_text = f"{seeds} seed{'s' if seeds != 1 else ''}"
    if budgets:
        return f"at equal training time (a budget of {', '.join(f'{b:g}' for b in budgets)} s, {seeds_text})"
    epochs = sorted(int(e) for e in ok["epochs"].dropna().unique())
    return f"at equal epochs ({', '.join(map(str, epochs))} epoch{'s' if epochs != [1] else ''}, {seeds_text})"


def equal_time_sentence(points: pd.DataFrame, group: Group) -> str | None:
    found = at_equal_time(points, group.label)
    if found is None or found[1].empty:
        return None
    horizon, mse = found
    ranking = ", ".join(f"{t} {value('mse', v)}" for t, v in mse.dropna().items())
    late = [t for t, v in mse.items() if pd.isna(v)]
    behind = f"; no result yet by then: {', '.join(late)}" if late else ""
    return (
        f"At equal training time, read off the time-to-quality curves at {horizon:.0f} s (when the first technique "
        f"finishes; means over seeds, no test): lowest test MSE **{mse.index[0]}** (test MSE at that time: "
        f"{ranking}{behind})."
    )


def ordering(values: dict[str, float], metric: str) -> list[str]:
    return sorted(values, key=values.get, reverse=not SPECS[metric].lower_is_better)


def study_sentences(stats: pd.DataFrame, group: Group) -> list[str]:
    """Our ordering against the study's on MSE and accuracy, for the techniques both have."""
    study = group.dataset if group.dataset in STUDY_DATASETS else NEAREST_STUDY.get(group.dataset)
    if study is None:
        return []
    out = []
    for metric in ("mse", "accuracy"):
        ours = {
            r["technique"]: r["mean"]
            for r in stats[stats["metric"] == metric].to_dict("records")
            if (study, r["technique"]) in ANCHORS and not pd.isna(r["mean"])
        }
        if len(ours) < 2:
            continue
        theirs = {t: getattr(ANCHORS[(study, t)], metric) for t in ours}
        mine, published = ordering(ours, metric), ordering(theirs, metric)
        agree = "the same order" if mine == published else "the same best" if mine[0] == published[0] else "differs"
        sign = " < " if SPECS[metric].lower_is_better else " > "
        out.append(
            f"{SPECS[metric].label} ordering, ours: {sign.join(mine)}; the study's on {STUDY_DATASETS[study]}: "
            f"{sign.join(published)} ({agree})."
        )
    if out and study != group.dataset:
        out.insert(0, f"{group.dataset} is not in the study; its nearest setting is {STUDY_DATASETS[study]}.")
    return out


def pca_sentence(stats: pd.DataFrame, config: dict) -> str | None:
    """What PCA's MSE means at this latent size: near-lossless once the latent reaches the images' rank."""
    pca = stats[(stats["metric"] == "mse") & (stats["technique"] == "pca")].to_dict("records")
    latent, size = config.get("model", {}).get("latent"), config.get("data", {}).get("image_size")
    if not pca or latent is None or size is None:
        return None
    record = pca[0]
    versus = (
        f"; {BASELINE} minus PCA on MSE: {-record['diff_mean']:+.{SPECS['mse'].digits}f}, {verdict(record)}"
        if not pd.isna(record["diff_mean"])
        else ""
    )
    if latent >= 0.9 * size * size:
        return (
            f"PCA (the linear floor) keeps {latent} components; a {size}×{size} grey image repeated to 3 channels has "
            f"rank at most {size * size}, so PCA is nearly lossless here (MSE {value('mse', record['mean'])}) and "
            f"no autoencoder is expected to beat it on MSE: the small-latent variant is the fair test{versus}."
        )
    if pd.isna(record["diff_mean"]):
        return f"PCA with {latent} components: MSE {value('mse', record['mean'])}."
    outcome = (
        f"the {BASELINE} does not beat this linear floor"
        if record["diff_mean"] < 0
        else f"the {BASELINE} beats this linear floor, as a non-linear autoencoder should"
    )
    return f"PCA with {latent} components: MSE {value('mse', record['mean'])}; {outcome}{versus}."


def findings(group: Group, rows: pd.DataFrame, stats: pd.DataFrame, points: pd.DataFrame, config: dict) -> list[str]:
    """The findings for one results table: a heading line, then one line per finding."""
    if stats.empty:
        return []
    best = [s for m in QUALITY if (s := best_sentence(stats, m))]
    lines = [f"Best technique per metric (PCA, a reference, excluded): {'; '.join(best)}."]
    budget_run = "budget_seconds" in rows and rows["budget_seconds"].notna().any()  # already at equal time
    lines += [s for s in (None if budget_run else equal_time_sentence(points, group), pca_sentence(stats, config)) if s]
    study = study_sentences(stats, group)
    lines += [" ".join(study)] if study else []
    return [f"**{group.label}**, {setting(rows)}:", *lines]
