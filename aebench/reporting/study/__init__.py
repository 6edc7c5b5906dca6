"""The reference study beside a table: its published values against our prediction intervals, its claims against
our standings, its curves, and every setting we set otherwise. The generic report knows no paper."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any

import pandas as pd

from aebench.reporting.cost import COST
from aebench.reporting.stats import estimate
from aebench.reporting.study import anchors
from aebench.reporting.study.anchors import ANCHORS, STUDY, Claim, StudyRun
from aebench.results.summary import finished

COMPARED = ("mae", "mse", "accuracy")  # the study's quality columns
CLEAN = "clean images"  # the classifier's ceiling row


@dataclass
class Comparison:
    """One table beside the study (``frame``: ``reproduction``; ``cost``: ``study_cost``; ``proxy``: its label)."""

    table: str
    study: StudyRun
    frame: pd.DataFrame
    claims: list[tuple[Claim, dict[str, pd.DataFrame]]]
    differences: list[str] = field(default_factory=list)
    curves: pd.DataFrame = field(default_factory=pd.DataFrame)
    cost: pd.DataFrame = field(default_factory=pd.DataFrame)
    proxy: str = ""
    closeness: tuple[int, ...] = ()  # smaller = more like the study: the first screen shows the closest table
    absent: list[str] = field(default_factory=list)  # the study's techniques without a finished row here (and with)
    present: list[str] = field(default_factory=list)


def gap(mean: float, published: float, metric: str) -> tuple[float, str]:
    """Ours − the study's: in percent of the study's value for errors, in percentage points for accuracy."""
    return ((mean - published) * 100, "pp") if metric == "accuracy" else ((mean / published - 1) * 100, "%")


def reproduction(dataset: str, stats: pd.DataFrame, ok: pd.DataFrame) -> pd.DataFrame:
    """Per technique and metric: the study's value, ours, and whether it lies in our prediction interval."""
    records = []
    mine = stats.set_index(["technique", "metric"])
    clean = estimate(ok.groupby("seed")["accuracy_clean"].first()) if "accuracy_clean" in ok else {}
    clean = {**clean, "n": 1, "sd": math.nan, "pi_low": math.nan, "pi_high": math.nan}  # one classifier: one value
    rows = [(t, m, ANCHORS[(dataset, t)], mine.loc[(t, m)]) for t in dict.fromkeys(stats["technique"]) for m in COMPARED
            if (dataset, t) in ANCHORS and (t, m) in mine.index]  # fmt: skip
    for technique, metric, anchor, ours in [*rows, (CLEAN, "accuracy", None, clean)]:
        published = anchors.CLEAN_ACCURACY[dataset] if anchor is None else getattr(anchor, metric)
        if published is None:
            continue
        diff, unit = gap(ours["mean"], published, metric)
        inside = None if math.isnan(ours["pi_low"]) else bool(ours["pi_low"] <= published <= ours["pi_high"])
        records.append({"technique": technique, "metric": metric, "study": published, "n": ours["n"],
                        "mean": ours["mean"], "sd": ours["sd"], "pi_low": ours["pi_low"], "pi_high": ours["pi_high"],
                        "diff": diff, "unit": unit, "inside": inside})  # fmt: skip
    return pd.DataFrame(records)


def same(ours: Any, theirs: Any) -> bool:
    if isinstance(theirs, (int, float)) and isinstance(ours, (int, float)):
        return math.isclose(float(ours), float(theirs))
    return bool(ours == theirs) if not isinstance(ours, list) else list(ours) == list(theirs)


def differences(run: StudyRun, dataset: str, rows: pd.DataFrame, ratios: bool = False) -> list[str]:
    """Everything our rows set otherwise than the study, once each, naming the techniques where not all."""
    ok, out = finished(rows), []
    for column, theirs, words in (("epochs", run.epochs, "epochs"), ("n_train", run.n_train, "training images"),
                                  ("n_test", run.n_test, "test images")):  # fmt: skip
        ours = sorted({int(v) for v in ok[column].dropna()})
        if ours != [theirs]:
            out.append(f"{words}: {', '.join(f'{v:,}' for v in ours)} (the study: {theirs:,})")
    seeds = f"seeds: {ok['seed'].nunique()} (the study: {run.seeds}; its value is one draw with a spread we cannot see)"
    out.append(seeds)
    devices = ", ".join(sorted({str(d) for d in ok["device"].dropna()})) or "not recorded"
    precision = ", ".join(sorted({str(d) for d in ok["precision"].dropna()})) or "not recorded"
    out.append(f"hardware: {devices}, precision {precision} (the study: {run.hardware}, {anchors.STUDY_PRECISION}); "
               f"train times are {'compared only as ratios to the baseline' if ratios else 'not compared'}")  # fmt: skip
    techniques = [t for t in dict.fromkeys(ok["technique"]) if (dataset, t) in ANCHORS]
    for (key, text), who in setting_differences(dataset, ok).items():
        whom = "" if who == techniques else f" for {', '.join(who)}"
        effect = f"; {anchors.SETTING_EFFECTS[key]}" if key in anchors.SETTING_EFFECTS else ""
        out.append(f"{key}: {text}{whom}{effect}")
    missing = [t for (d, t) in ANCHORS if d == dataset and t not in techniques]
    unrun = [t for t in missing if not (rows["technique"] == t).any()]
    for technique in (t for t in missing if t not in unrun):
        last = rows[rows["technique"] == technique].iloc[-1]
        out.append(f"{technique}: no result here ({last['status']}: {str(last['reason']).split(';')[0]})")
    out += [f"not run here: {', '.join(unrun)}"] if unrun else []
    return out


def setting_differences(dataset: str, ok: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """(setting key, ours and the study's in words) -> the techniques whose rows set it otherwise than the study."""
    found: dict[tuple[str, str], list[str]] = {}
    for technique in (t for t in dict.fromkeys(ok["technique"]) if (dataset, t) in ANCHORS):
        settings = next((s for s in ok.loc[ok["technique"] == technique, "settings"] if isinstance(s, dict)), None)
        if settings is None:
            found.setdefault(("settings", "not recorded in the rows"), []).append(technique)
            continue
        lr = {"train.lr": anchors.STUDY_LR[(dataset, technique)]} if (dataset, technique) in anchors.STUDY_LR else {}
        study = {**anchors.STUDY_SETTINGS, **anchors.DATASET_SETTINGS.get(dataset, {})}
        for key, theirs in {**study, **anchors.TECHNIQUE_SETTINGS.get(technique, {}), **lr}.items():
            if key in settings and not same(settings[key], theirs):
                said = anchors.STUDY_SETTING_WORDS.get(key, theirs)
                found.setdefault((key, f"{settings[key]} (the study: {said})"), []).append(technique)
    return found


def study_cost(dataset: str, stats: pd.DataFrame) -> pd.DataFrame:
    """Per technique: the study's time ratio to its baseline beside our controlled ratio; empty: none measured."""
    base, run = stats.loc[stats["role"] == "baseline", "technique"], anchors.STUDY_RUNS[dataset]
    unit = ANCHORS.get((dataset, base.iloc[0])) if len(base) else None
    ours = stats[(stats["metric"] == COST) & (stats["role"] != "baseline")].set_index("technique")
    records = []
    for (d, technique), theirs in ANCHORS.items() if unit and unit.train_seconds and len(ours) else ():
        if d == dataset and technique != base.iloc[0] and theirs.train_seconds:
            study, r = theirs.train_seconds / unit.train_seconds, ours.reindex([technique]).iloc[0]
            inside = None if math.isnan(r["mean"]) else bool(r["ci_low"] <= study <= r["ci_high"])
            records.append({"technique": technique, "study": study, "ours": r["mean"], "ci_low": r["ci_low"],
                            "ci_high": r["ci_high"], "inside": inside,
                            "pace": run.epochs * run.n_train / unit.train_seconds})  # fmt: skip
    measured = any(r["inside"] is not None for r in records)
    return pd.DataFrame(records if measured else [], columns=["technique", "study", "ours", "ci_low", "ci_high",
                                                             "inside", "pace"])  # fmt: skip


def comparison(table: str, stats: pd.DataFrame, rows: pd.DataFrame) -> Comparison | None:
    """The table beside the study (``rows``: unfinished ones too), None where the study ran no such dataset."""
    ok = finished(rows)
    proxy = anchors.PROXIES.get(str(ok["dataset"].iloc[0]))
    dataset = proxy.of if proxy else str(ok["dataset"].iloc[0])
    run = anchors.STUDY_RUNS.get(dataset)
    frame = reproduction(dataset, stats, ok) if run else pd.DataFrame()
    if run is None or frame.empty or not (frame["technique"] != CLEAN).any():
        return None
    label = proxy.label if proxy else ""
    claims = [(c, {m: stats[stats["metric"] == m] for m in (*c.metrics, c.equal_metric) if m})
              for c in anchors.CLAIMS if c.dataset == dataset]  # fmt: skip
    present = [t for t in dict.fromkeys(stats["technique"]) if (dataset, t) in ANCHORS]
    latent = anchors.STUDY_SETTINGS["model.latent"]
    shared = [(ok["epochs"] == run.epochs).all(), (ok["n_train"] == run.n_train).all(),
              (ok["n_test"] == run.n_test).all(), (ok["latent"] == latent).all()]  # fmt: skip
    judged = frame["inside"].notna().any()  # some technique has the seeds for a prediction interval
    closeness = (not judged, shared.count(False), len({key for key, _ in setting_differences(dataset, ok)}),
                 -len(present))  # fmt: skip
    cost = study_cost(dataset, stats)
    curves = pd.DataFrame([(t, e + 1, v) for t in present for e, v in enumerate(anchors.CURVES.get((dataset, t), ()))],
                          columns=["technique", "epoch", "test_mse"])  # fmt: skip
    box = [f"data: {ok['dataset'].iloc[0]}, a {label.removeprefix('proxy: ')} (the study: {run.name})"] * bool(proxy)
    return Comparison(table, replace(run, name=f"{run.name} ({label})") if proxy else run, frame.assign(proxy=label),
                      claims, box + differences(run, dataset, rows, len(cost) > 0), curves, cost, label, closeness,
                      [t for (d, t) in ANCHORS if d == dataset and t not in present], present)  # fmt: skip


__all__ = ["STUDY", "Comparison", "comparison"]
