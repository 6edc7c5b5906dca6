"""The Python API as a notebook drives it: run, load, report; it writes what the command line writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from helpers import REPO

import aebench
from aebench.cli import main
from aebench.errors import UserError
from aebench.reporting.stats import METRICS

SETS = ["seeds=[0, 1]", "techniques=[baseline, pca]"]


def written(folder: Path) -> set[str]:
    """The files a run left in a results folder, cell folders named without their config hash."""
    return {str(p.relative_to(folder).parent.parent / p.name) if "cells" in p.parts else p.name
            for p in folder.rglob("*") if p.is_file() and p.name != ".lock"}  # fmt: skip


def test_a_notebook_runs_loads_and_reports_through_the_api(
    experiment_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the default results/<name> and report/ land here
    path = experiment_file()
    rows = aebench.run(str(path), sets=SETS, device="cpu", data_root=tmp_path / "no-data")
    out = tmp_path / "results" / "tiny"
    assert isinstance(rows, pd.DataFrame)
    assert sorted(zip(rows["technique"], rows["seed"])) == [("baseline", 0), ("baseline", 1), ("pca", 0), ("pca", 1)]
    assert set(rows["status"]) == {"ok"} and {"role", "own_loss", "config_hash"} <= set(rows.columns)

    cli_out = tmp_path / "cli"
    sets = [arg for s in SETS for arg in ("--set", s)]
    argv = ["-q", "run", str(path), "--out", str(cli_out), "--device", "cpu", "--data-root", str(tmp_path / "none")]
    assert main([*argv, *sets]) == 0
    assert written(out) == written(cli_out) and {"summary.csv", "summary.md"} <= written(out)
    assert "Δ" in (out / "summary.md").read_text()  # the paired tests are in the file too

    loaded = aebench.load_results(out)
    assert sorted(loaded["config_hash"]) == sorted(rows["config_hash"])
    again = aebench.run(path, sets=SETS, device="cpu", data_root=tmp_path / "no-data")  # resumes: nothing reruns
    assert (out / "results.jsonl").read_text().count("\n") == 4 and len(again) == 4

    stats = aebench.statistics(out)
    seeded = stats[stats["metric"].isin(METRICS)]  # the rest: the run's controlled cost record (n: its pairs)
    assert set(seeded["technique"]) == set(rows["technique"]) and (seeded["n"] == 2).all()
    assert set(stats.loc[~stats["metric"].isin(METRICS), "metric"]) == {"cost_ratio", "fit_seconds"}
    readme = aebench.report(results=[out], out=tmp_path / "report")
    assert readme == tmp_path / "report" / "README.md" and "python -m aebench report --results results/tiny" in (
        readme.read_text()
    )


def test_the_api_refuses_bad_input_in_one_line(experiment_file, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="--device gpu: unknown device"):
        aebench.run(experiment_file(), out=tmp_path, device="gpu")
    with pytest.raises(UserError, match="no results.jsonl here"):
        aebench.report(results=[tmp_path], out=tmp_path / "report")


HEAVY = ("torch", "pandas", "scipy", "torchmetrics", "torchvision", "timm")
PROBE = f"""
import sys
from aebench.cli import main
try:
    main(sys.argv[1:])
except SystemExit:  # --help
    pass
print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})), file=sys.stderr)
"""


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["list"], ["run", str(REPO / "experiments" / "mnist.yaml"), "--dry-run", "--set", "seeds=[0]"]],
    ids=["help", "list", "dry-run"],
)
def test_start_up_commands_load_no_heavy_library(argv: list[str], tmp_path: Path) -> None:
    """``--help``, ``list`` and ``--dry-run`` pay for no torch, pandas or scipy import (their speed is measured in
    the README, Performance)."""
    probe = [sys.executable, "-c", PROBE, *argv]
    proc = subprocess.run(
        probe, capture_output=True, text=True, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    assert proc.stderr.strip().splitlines()[-1] == "[]", proc.stderr


def test_importing_aebench_loads_no_heavy_library() -> None:
    script = f"import sys, aebench; print(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r})))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=True)
    assert proc.stdout.strip() == "[]"
