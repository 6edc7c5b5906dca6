"""The controlled cost record of a results folder (``cost.json``): each technique's training cost measured against
the baseline's on one machine (``execution/cost.py`` writes it), read back here as a tidy frame for the report."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aebench.files import read_text, write_text

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)
COST_FILE = "cost.json"
COST_LIMIT = 4 * 2**20  # bytes aebench reads from a cost.json (it writes a few KB)
KINDS = ("step", "fit", "one-off")  # a training step timed against the baseline's; a closed-form fit; a one-off
COLUMNS = ["folder", "dataset", "technique", "kind", "ratio", "ci_low", "ci_high", "n", "seconds_per_step",
           "seconds", "images", "machine"]  # fmt: skip


def read_cost(folder: Path) -> dict[str, Any] | None:
    """The folder's cost record; None when there is none, or it cannot be read (logged)."""
    path = folder / COST_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(read_text(path, COST_LIMIT))
    except (OSError, ValueError) as exc:
        log.warning("%s: unreadable (%s); the cost is measured again", path, exc)
        return None
    return record if isinstance(record, dict) else None


def write_cost(folder: Path, record: dict[str, Any]) -> None:
    """Write the record (strict JSON) atomically."""
    write_text(folder / COST_FILE, json.dumps(record, indent=1, allow_nan=False) + "\n")


def describe_machine(machine: dict[str, Any]) -> str:
    """``AMD EPYC (avx2 avx512f avx512_bf16), cpu, 1 thread, torch 2.5``: what the ratios were measured on."""
    flags = f" ({' '.join(machine.get('flags') or [])})" if machine.get("flags") else ""
    return (
        f"{machine.get('name')}{flags}, {machine.get('device')}, {machine.get('threads')} thread"
        f"{'' if machine.get('threads') == 1 else 's'}, "
        f"torch {machine.get('torch')}"
    )


def describe_entry(entry: dict[str, Any] | None) -> str:
    """A step's ratio with its CI and pairs, or a fit's or one-off's seconds."""
    if entry is None:
        return "-"
    if entry["kind"] != "step":
        return f"{entry['seconds']:.2f} s on {entry['images']:,} images"
    return f"{entry['ratio']:.3f} [{entry['ci_low']:.3f}, {entry['ci_high']:.3f}], {entry['pairs']} pairs"


def load_cost(folders: Iterable[Path]) -> pd.DataFrame:
    """Every measured entry of the folders' cost records, one row each: ``ratio`` to the baseline's step time with
    its 95 % CI (``ci_low``, ``ci_high``) and ``n`` pairs for a ``step``; ``seconds`` on ``images`` training images
    for a ``fit`` or a ``one-off``; the machine in words. Folders without a record add no row."""
    import pandas as pd

    rows = []
    for folder in folders:
        record = read_cost(Path(folder)) or {}
        machine = describe_machine(record.get("machine") or {})
        for entry in record.get("entries") or []:
            if entry.get("kind") in KINDS:
                rows.append({**entry, "folder": str(folder), "n": entry.get("pairs"), "machine": machine})
    return pd.DataFrame(rows).reindex(columns=COLUMNS)
