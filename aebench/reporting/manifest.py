"""``.aebench-report.json``: the results folders a report was made from and every file it wrote. A report refuses a
folder holding another's report unless forced, removes only its own stale files, and survives its own kill -9."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from aebench.errors import UserError
from aebench.files import UnsafePath, inside, read_bytes, write_text

MANIFEST = ".aebench-report.json"
MANIFEST_LIMIT = 16 * 2**20  # bytes of a manifest (a report of 1,000 figures writes about 100 KB)
REPORT_NAMES = ("README.md", "report.tex", "tables", "figures")  # what a report writes at its top level


@dataclass(frozen=True)
class Manifest:
    """Results folders (relative to the report folder) and the files written (relative, sorted)."""

    results: tuple[str, ...]
    files: tuple[str, ...]


def relative(path: Path, out: Path) -> str:
    return Path(os.path.relpath(Path(path).resolve(), out.resolve())).as_posix()


def read_manifest(out: Path) -> Manifest | None:
    """The folder's manifest, None where there is none; a damaged one is a user error (ownership unknown)."""
    path = out / MANIFEST
    try:
        data = json.loads(read_bytes(path, MANIFEST_LIMIT).decode("utf-8"))
        return Manifest(tuple(map(str, data["results"])), tuple(map(str, data["files"])))
    except FileNotFoundError:
        return None
    except (UserError, OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise UserError(f"{path}: damaged report manifest; pass --force to replace the report there") from None


def claim(out: Path, folders: list[Path], force: bool) -> Manifest | None:
    """Check ``out`` may take the report, record its manifest and clear interrupted writes; the previous."""
    previous = check(out, folders, force)
    files = previous.files if previous else ()
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / MANIFEST, json.dumps({"results": [relative(f, out) for f in folders], "files": files}, indent=1))
    for folder in (out, out / "tables", out / "figures"):
        for tmp in folder.glob("*.tmp") if folder.is_dir() and not folder.is_symlink() else ():
            if tmp.is_file() and not tmp.is_symlink():
                tmp.unlink()  # atomic_write's '<name>.<random>.tmp' of a killed report
    return previous


def check(out: Path, folders: list[Path], force: bool) -> Manifest | None:
    for name in (MANIFEST, *REPORT_NAMES):
        inside(out, out / name)  # a link where the report writes is refused first, whatever else is there
    previous = read_manifest(out)
    if force:
        return previous
    found = [name for name in REPORT_NAMES if (out / name).exists()] if previous is None else []
    if found:
        raise UserError(
            f"{out}: holds {', '.join(found)} that no aebench report manifest accounts for; pass --force to "
            "write the report there anyway, or --out another folder"
        )
    others = [r for r in previous.results if r not in {relative(f, out) for f in folders}] if previous else []
    if others:
        raise UserError(
            f"{out}: holds the report of other results ({', '.join(others)}); pass --force to replace it, "
            "or --out another folder"
        )
    return previous


def finish(out: Path, previous: Manifest | None, folders: list[Path], written: list[Path]) -> None:
    """Remove what the previous report wrote and this one did not, then record this report's manifest."""
    files = sorted({relative(p, out) for p in written} | {MANIFEST})
    for name in sorted(set(previous.files if previous else ()) - set(files)):
        stale = out / name
        try:
            inside(out, stale)
        except UnsafePath:
            continue  # only plain files inside the report folder, reached through no link, are ever removed
        if stale.is_file():
            stale.unlink()
            for parent in stale.parents:
                if parent == out or not parent.is_relative_to(out) or any(parent.iterdir()):
                    break
                parent.rmdir()
    manifest = {"results": [relative(f, out) for f in folders], "files": files}
    write_text(out / MANIFEST, json.dumps(manifest, indent=1) + "\n")
