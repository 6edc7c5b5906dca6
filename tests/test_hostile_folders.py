"""A results or report folder made by someone else: no file outside it is read or written, whatever links it holds.

Each case plants a victim file (and a folder) outside the folder, points a link inside the folder at it, runs
``aebench`` and checks that the victim is untouched, that nothing new appeared beside it, and that its content
is in no output.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from helpers import REPO, TINY, error_line

from aebench.cli import main
from aebench.errors import UserError
from aebench.execution.lock import LOCK_FILE, results_lock
from aebench.execution.runner import run_experiment
from aebench.experiment import parse_experiment
from aebench.results.schema import RESULTS_FILE

SECRET = "VICTIM-7f3a-outside-the-folder"
FINISHED = {**TINY, "techniques": ["pca"]}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results folder with one finished cell (PCA: seconds), copied by each test."""
    out = tmp_path_factory.mktemp("finished") / "res"
    run_experiment(parse_experiment(FINISHED, "finished"), out, Path("/nonexistent"), "cpu")
    return out


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A folder outside every results and report folder, holding the victim file."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "victim.txt").write_text(f"{SECRET}\n")
    return folder


@pytest.fixture
def no_hang() -> Iterator[None]:
    """Fail (never hang) when a command waits on a FIFO or a service: SIGALRM after 120 s."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("still running after 120 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(120)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file below ``folder`` (not following links) and its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def relink(path: Path, target: Path) -> None:
    """Replace ``path`` (a file or a folder, or nothing) by a symbolic link to ``target``."""
    if path.is_dir() and not path.is_symlink():
        shutil.copytree(path, target, dirs_exist_ok=True)
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    path.symlink_to(target)


def first_cell(results: Path) -> Path:
    return next((results / "cells").glob("*/*/*"))


Plant = Callable[[Path, Path], None]  # (folder, outside) -> plants a link inside folder
VICTIM: Callable[[Path], Path] = lambda outside: outside / "victim.txt"  # noqa: E731

# --------------------------------------------------------------------------- run: nothing written through a link

RUN_LINKS: dict[str, Plant] = {
    ".aebench.lock -> victim": lambda res, o: relink(res / LOCK_FILE, VICTIM(o)),
    "results.jsonl -> victim": lambda res, o: relink(res / RESULTS_FILE, VICTIM(o)),
    "summary.md -> victim": lambda res, o: relink(res / "summary.md", VICTIM(o)),
    "cells/ -> a folder outside": lambda res, o: relink(res / "cells", o / "cells"),
    "a cell's history.json -> victim": lambda res, o: relink(first_cell(res) / "history.json", VICTIM(o)),
    "classifiers/ -> a folder outside": lambda res, o: relink(res / "classifiers", o / "classifiers"),
}


@pytest.mark.parametrize("case", list(RUN_LINKS))
def test_run_refuses_a_results_folder_holding_a_link_and_writes_nothing_outside(
    case: str, finished: Path, outside: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    res = tmp_path / "res"
    shutil.copytree(finished, res)
    RUN_LINKS[case](res, outside)
    before = snapshot(outside)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({**FINISHED, "seeds": [0, 1]}))  # seed 1 is still to train
    assert main(["-q", "run", str(exp), "--out", str(res)]) == 2
    assert "symbolic link" in error_line(capsys)
    assert snapshot(outside) == before


# --------------------------------------------------------------------------- report: nothing read through a link

REPORT_INPUT_LINKS: dict[str, tuple[Plant, str]] = {
    "NOTES.md -> victim": (lambda res, o: relink(res / "NOTES.md", VICTIM(o)), "NOTES.md"),
    "a cell's samples.npz -> victim": (lambda res, o: relink(first_cell(res) / "samples.npz", VICTIM(o)), "samples"),
    "a cell's history.json -> victim": (lambda res, o: relink(first_cell(res) / "history.json", VICTIM(o)), "history"),
    "cells/<dataset>/ -> a folder outside": (
        lambda res, o: relink(res / "cells" / "digits", o / "digits"),
        "cells/digits",
    ),
    "NOTES.md is a FIFO": (lambda res, o: os.mkfifo(res / "NOTES.md"), "NOTES.md: not a regular file"),
}


@pytest.mark.parametrize("case", list(REPORT_INPUT_LINKS))
def test_report_skips_linked_inputs_with_a_warning_and_shows_none_of_their_content(
    case: str, finished: Path, outside: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture, no_hang: None
) -> None:
    res, out = tmp_path / "res", tmp_path / "report"
    shutil.copytree(finished, res)
    plant, named = REPORT_INPUT_LINKS[case]
    plant(res, outside)
    before = snapshot(outside)
    assert main(["-q", "report", "--results", str(res), "--out", str(out)]) == 0
    assert named in caplog.text and "skipped in the report" in caplog.text
    assert all(SECRET.encode() not in data for data in snapshot(out).values())
    assert not list((out / "figures").glob("snapshots/*"))  # no GIF copied from outside
    assert snapshot(outside) == before


def test_a_linked_cell_folder_gives_no_figure_from_its_files(
    finished: Path, outside: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    res, out = tmp_path / "res", tmp_path / "report"
    shutil.copytree(finished, res)
    assert main(["-q", "report", "--results", str(res), "--out", str(tmp_path / "plain")]) == 0
    assert list((tmp_path / "plain" / "figures").glob("reconstructions_*.png"))  # the folder's own samples
    relink(res / "cells", outside / "cells")
    assert main(["-q", "report", "--results", str(res), "--out", str(out)]) == 0
    assert not list((out / "figures").glob("reconstructions_*.png"))
    assert "a symbolic link inside" in caplog.text


REPORT_OUTPUT_LINKS: dict[str, Plant] = {
    "README.md -> victim": lambda out, o: relink(out / "README.md", VICTIM(o)),
    "report.tex -> victim": lambda out, o: relink(out / "report.tex", VICTIM(o)),
    "figures/ -> a folder outside": lambda out, o: relink(out / "figures", o / "figures"),
    "tables/ -> a folder outside": lambda out, o: relink(out / "tables", o / "tables"),
}


@pytest.mark.parametrize("case", list(REPORT_OUTPUT_LINKS))
def test_report_refuses_to_write_through_a_link_in_its_folder(
    case: str, finished: Path, outside: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    (out / "figures").mkdir(parents=True)
    (out / "tables").mkdir()
    REPORT_OUTPUT_LINKS[case](out, outside)
    before = snapshot(outside)
    assert main(["-q", "report", "--results", str(finished), "--out", str(out)]) == 2
    assert "symbolic link" in error_line(capsys)
    assert snapshot(outside) == before


def test_report_writes_leave_no_temporary_file_and_replace_whole_files(finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    assert main(["-q", "report", "--results", str(finished), "--out", str(out)]) == 0
    first = snapshot(out)
    assert main(["-q", "report", "--results", str(finished), "--out", str(out)]) == 0
    assert snapshot(out) == first and not list(out.rglob("*.tmp"))


def test_a_full_disk_during_report_is_one_line_and_leaves_no_partial_file(finished: Path, tmp_path: Path) -> None:
    """RLIMIT_FSIZE stands in for a full disk: every write past 20 KB fails (EFBIG), as ENOSPC would."""
    out = tmp_path / "report"
    limit = "import resource, signal; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
    limit += "resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000)); "
    code = (
        limit
        + f"from aebench.cli import main; raise SystemExit(main(['-q', 'report', '--results', {str(finished)!r}, '--out', {str(out)!r}]))"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and err[0].startswith("aebench: error: "), proc.stderr[-2000:]
    assert "File too large" in err[0]
    assert not list(out.rglob("*.tmp"))
    assert all(p.read_bytes().rstrip().endswith(b"%%EOF") for p in out.rglob("*.pdf"))  # each PDF whole


# --------------------------------------------------------------------------- the lock cannot be sidestepped


def test_deleting_the_lock_file_admits_no_second_writer(tmp_path: Path) -> None:
    with results_lock(tmp_path):
        (tmp_path / LOCK_FILE).unlink()
        with pytest.raises(UserError, match="in use by another aebench run"), results_lock(tmp_path):
            pass


def test_a_lock_file_replaced_by_a_link_is_refused_and_its_target_untouched(tmp_path: Path, outside: Path) -> None:
    folder = tmp_path / "res"
    folder.mkdir()
    (folder / LOCK_FILE).symlink_to(VICTIM(outside))
    with pytest.raises(UserError, match="symbolic link"), results_lock(folder):
        pass
    assert VICTIM(outside).read_text() == f"{SECRET}\n"


def test_the_lock_of_a_killed_run_never_blocks(tmp_path: Path) -> None:
    code = (
        "import sys, time; from pathlib import Path; from aebench.execution.lock import results_lock\n"
        f"with results_lock(Path({str(tmp_path)!r})):\n    print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(UserError, match=f"pid {holder.pid}"), results_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
    with results_lock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text().startswith(f"pid {os.getpid()} ")
