"""The conditions a group's rows were measured under: device, precision, torch threads per cell, cells run at
once and the training step (compiled or eager). They are not part of the comparable setting (quality compares
across devices), but they change what the numbers mean: a precision the arithmetic behind the quality numbers, all
five the train times. A table whose rows mix device or precision says so; a time comparison whose rows differ in
any of the five, or do not record them, is marked as not like-for-like (or not known to be)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

FIELDS = {
    "device": "device",
    "precision": "precision",
    "threads": "threads per cell",
    "parallel_cells": "cells at once",
    "step_mode": "training step",
}
QUALITY_FIELDS = ("device", "precision")  # what a quality number's arithmetic may depend on
TIME_METRICS = ("train_seconds", "images_per_second")
UNEQUAL = "unequal conditions"
UNRECORDED = "conditions not recorded"
NOT_ALIKE = "not like-for-like"
NOT_KNOWN = "not known to be like-for-like"


def text_of(value: object) -> str | None:
    """A recorded value as text ('1', not '1.0'), None where the row lacks it."""
    if pd.isna(value):
        return None
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def devices_of(ok: pd.DataFrame) -> str:
    """The devices these rows ran on ('cpu', 'cpu, cuda:0'); '' where none is recorded."""
    return ", ".join(sorted({str(d) for d in ok["device"].dropna()})) if "device" in ok else ""


@dataclass(frozen=True)
class Conditions:
    """Per condition field: each value (None: not recorded) with the techniques whose rows hold it."""

    values: dict[str, dict[str | None, list[str]]]

    def differing(self) -> list[str]:
        """The fields whose recorded values differ between rows."""
        return [f for f in FIELDS if len([v for v in self.values[f] if v is not None]) > 1]

    def unrecorded(self) -> list[str]:
        return [f for f in FIELDS if None in self.values[f]]

    def listing(self, field: str) -> str:
        """'1 (baseline), 4 (other)' or 'not recorded (pca)'."""
        return ", ".join(
            f"{'not recorded' if v is None else v} ({', '.join(ts)})" for v, ts in self.values[field].items()
        )

    def time_marker(self) -> str:
        """'' where every time was measured alike (as far as the rows say), else a few words why not."""
        return {NOT_ALIKE: UNEQUAL, NOT_KNOWN: UNRECORDED}.get(self.time_standing() or "", "")

    def time_standing(self) -> str | None:
        """'not like-for-like', 'not known to be like-for-like', or None where the times compare."""
        return NOT_ALIKE if self.differing() else NOT_KNOWN if self.unrecorded() else None

    def time_caveat(self) -> str | None:
        """Why a time comparison of these rows is not like-for-like (or not known to be), in a sentence; or None."""
        differ = self.differing()
        missing = [f for f in self.unrecorded() if f not in differ]
        unrecorded = ""
        if missing:
            who = sorted({t for f in missing for t in self.values[f][None]})
            unrecorded = f"the rows of {', '.join(who)} do not record {' or '.join(FIELDS[f] for f in missing)}"
        if differ:
            timed = "; ".join([*(f"{FIELDS[f]} {self.listing(f)}" for f in differ), *([unrecorded] * bool(missing))])
            return f"{NOT_ALIKE} (timed with {timed}): a time difference measures these as well as the technique"
        return f"{NOT_KNOWN} ({unrecorded})" if missing else None

    def quality_note(self) -> str | None:
        """A footnote where the rows mix a device or a precision (which the setting does not hold fixed)."""
        mixed = [f for f in QUALITY_FIELDS if len(self.values[f]) > 1]
        if not mixed:
            return None
        listed = "; ".join(f"{FIELDS[f]} {self.listing(f)}" for f in mixed)
        effect = (
            "a precision changes the arithmetic, so quality differences across them may partly come from it"
            if "precision" in mixed
            else "quality compares across devices at one precision"
        )
        return f"Mixed conditions, not part of the setting: {listed}; {effect} (train times: see their caveat)."


def conditions(ok: pd.DataFrame) -> Conditions:
    """The conditions of these rows (a column the rows lack counts as not recorded)."""
    values: dict[str, dict[str | None, list[str]]] = {}
    for field in FIELDS:
        column = ok[field] if field in ok else pd.Series([None] * len(ok), index=ok.index)
        found: dict[str | None, list[str]] = {}
        for technique, value in zip(ok["technique"], column):
            mine = found.setdefault(text_of(value), [])
            mine += [technique] if technique not in mine else []
        values[field] = found
    return Conditions(values)


def time_caveat(ok: pd.DataFrame) -> str | None:
    """Why the time comparisons between these rows' techniques are not like-for-like (or not known to be); None
    where they are, or where one technique leaves nothing to compare."""
    return conditions(ok).time_caveat() if ok["technique"].nunique() > 1 else None


def time_standing(ok: pd.DataFrame) -> str | None:
    """'not like-for-like' or 'not known to be like-for-like' for the time comparisons between these rows'
    techniques; None where they compare, or where one technique leaves nothing to compare."""
    return conditions(ok).time_standing() if ok["technique"].nunique() > 1 else None
