"""``aebench report`` and ``aebench.report(...)``: which results folders to read, checked, and the report written."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from aebench.errors import UserError
from aebench.files import writable_folder

DEFAULT_RESULTS = Path("results")  # every folder below it holding a results.jsonl, when none is named


def relative(path: Path) -> str:
    """A path as the repository sees it: relative to the working directory where it lies below it."""
    resolved = path.resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)


def make_report(results: Iterable[str | Path] | None = None, out: str | Path = "report", force: bool = False) -> Path:
    """Regenerate the report in ``out`` (default results: every ``results/*/``); returns ``out/README.md``."""
    from aebench.reporting.build import write_report

    folders = [Path(f) for f in results or ()] or sorted(p.parent for p in DEFAULT_RESULTS.glob("*/results.jsonl"))
    if not folders:
        raise UserError(f"no results found under {DEFAULT_RESULTS}/ (run an experiment first, or pass --results DIR)")
    for folder in folders:
        if not (folder / "results.jsonl").is_file():
            raise UserError(f"{folder}: no results.jsonl here (pass a folder written by 'aebench run')")
    out = Path(out)
    writable_folder(out, "--out")
    command = f"python -m aebench report --results {' '.join(map(relative, folders))} --out {relative(out)}"
    return write_report(folders, out, command=command, force=force)
