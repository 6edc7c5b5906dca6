"""Every way a run differs from the study it is set beside, in words: length, data size, seeds, hardware, each
differing setting of the cells' resolved configs (with what it does to the comparison), the study's techniques
without a usable result here, flags, the protocol, and what techniques measured while training."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from aebench.reporting.anchors import (
    ANCHORS,
    PROTOCOL_DIFFERENCES,
    SETTING_EFFECTS,
    STUDY_LR,
    STUDY_SETTINGS,
    TECHNIQUE_SETTINGS,
    VALUE_EFFECTS,
    StudyRun,
)
from aebench.reporting.conditions import devices_of, time_caveat
from aebench.reporting.study_claims import Scope
from aebench.results.schema import SPECS

MISSING = object()
FLAGGED_METRICS = ("mae", "mse", "accuracy", "train_seconds")


def caveats(study: StudyRun, scope: Scope, configs: Mapping[str, dict]) -> list[str]:
    """The caveats of one group, those that make the run reduced (shorter, smaller) first."""
    ok, out = scope.ok, []
    epochs = sorted({int(e) for e in ok["epochs"].dropna()})
    if any(e < study.epochs for e in epochs):
        out.append(f"**Shorter** than the study: {', '.join(map(str, epochs))} epochs (the study: {study.epochs}).")
    if "budget_seconds" in ok and ok["budget_seconds"].notna().any():
        budgets = ", ".join(f"{b:g}" for b in sorted(ok["budget_seconds"].dropna().unique()))
        out.append(
            f"**Equal time, not equal epochs**: a training budget of {budgets} s a cell (the study: equal epochs)."
        )
    for column, theirs, what in (("n_train", study.n_train, "training"), ("n_test", study.n_test, "test")):
        sizes = sorted({int(n) for n in ok[column].dropna()}) if column in ok else []
        if any(n < theirs for n in sizes):
            shown = ", ".join(f"{n:,}" for n in sizes)
            out.append(f"**Smaller** than the study: {shown} {what} images (the study: {theirs:,}).")
    out.append(
        f"Seeds: ours {ok['seed'].nunique()}, the study {study.seeds}. The study's value is one draw with a spread we "
        "cannot see, so a published value outside our interval need not mean the runs disagree."
    )
    devices = devices_of(ok) or "unknown"
    out.append(
        f"Train time: ours on {devices}, the study's on {study.hardware}; the ratio measures the hardware as much as "
        "the technique." + (f" Between our techniques, times are {caveat}." if (caveat := time_caveat(ok)) else "")
    )
    out += setting_differences(scope.dataset, scope.present, configs)
    gaps = [f"{t} ({scope.absent(t)})" for (d, t) in ANCHORS if d == scope.dataset and t not in scope.present]
    out += [f"Not compared, no usable result here: {', '.join(gaps)}."] if gaps else []
    out += flag_lines(scope)
    out += [f"Protocol: {text}." for text in PROTOCOL_DIFFERENCES]
    out += measured_lines(scope)
    return out


def flag_lines(scope: Scope) -> list[str]:
    """'No claim on MAE, MSE of technique (flagged: why)', one line per flagged technique."""
    out = []
    for technique in scope.present:
        barred = {m: why for m in FLAGGED_METRICS if (why := scope.flags.why_not(technique, m))}
        if barred:
            reasons = "; ".join(dict.fromkeys(barred.values()))
            out.append(f"No claim on {', '.join(SPECS[m].label for m in barred)} of {technique} ({reasons}).")
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


def study_settings(dataset: str, technique: str) -> dict[str, Any]:
    """The study's settings for one technique on one dataset, as dotted config keys."""
    lr = {"train.lr": STUDY_LR[(dataset, technique)]} if (dataset, technique) in STUDY_LR else {}
    return {**STUDY_SETTINGS, **TECHNIQUE_SETTINGS.get(technique, {}), **lr}


def differences(dataset: str, technique: str, config: dict) -> list[tuple[str, Any, Any]]:
    """(key, ours, the study's) for each setting where a technique's cell config differs from the study's."""
    found = ((key, lookup(config, key), theirs) for key, theirs in study_settings(dataset, technique).items())
    return [(key, ours, theirs) for key, ours, theirs in found if ours is not MISSING and not same(ours, theirs)]


def differing_keys(dataset: str, techniques: list[str], configs: Mapping[str, dict]) -> dict[str, list[str]]:
    """Per technique, the setting keys its cells set otherwise than the study did."""
    return {t: [key for key, _, _ in differences(dataset, t, configs.get(t) or {})] for t in techniques}


def setting_differences(dataset: str, techniques: list[str], configs: Mapping[str, dict]) -> list[str]:
    """One line per setting where our cells differ from the study's, naming the techniques ('every technique' when
    all of them) and what the difference does."""
    differ: dict[tuple[str, str, str], list[str]] = {}
    unknown = [t for t in techniques if not configs.get(t)]
    for technique in techniques:
        for key, ours, theirs in differences(dataset, technique, configs.get(technique) or {}):
            differ.setdefault((key, str(ours), f"{ours} (the study: {theirs})"), []).append(technique)
    known = [t for t in techniques if t not in unknown]
    out = []
    for (key, ours, text), who in differ.items():
        whom = "every technique" if who == known and len(who) > 1 else ", ".join(who)
        effect = "".join(f"; {e}" for e in (SETTING_EFFECTS.get(key), VALUE_EFFECTS.get((key, ours))) if e)
        out.append(f"**Configured differently**: {key} {text} for {whom}{effect}.")
    if unknown:
        out.append(f"Settings not compared for {', '.join(unknown)}: no cell config at hand.")
    return out


def measured_lines(scope: Scope) -> list[str]:
    """What techniques measured while training (the rows' ``measured`` field), as means over seeds."""
    if "measured" not in scope.ok:
        return []
    out = []
    for technique in scope.present:
        found = [m for m in scope.ok.loc[scope.ok["technique"] == technique, "measured"] if isinstance(m, dict) and m]
        if found:
            keys = list(dict.fromkeys(k for m in found for k in m))
            values = ", ".join(f"{k} {np.mean([m[k] for m in found if k in m]):.4g}" for k in keys)
            out.append(f"Measured by {technique} while training (mean over {len(found)} seeds): {values}.")
    return out
