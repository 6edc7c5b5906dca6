"""``aebench report`` end to end: the files it writes, its CSVs against the rows, the first screen, LaTeX that builds,
reruns that match, and a report folder it owns (another's is refused; its own killed run never blocks a rerun)."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import REPO
from report_rows import make_row, write_results

from aebench import cli
from aebench.reporting.build import write_report
from aebench.reporting.document import Block, latex
from aebench.reporting.manifest import MANIFEST, claim
from aebench.techniques import TECHNIQUES

# (experiment, dataset, technique, seeds, status)
PLAN = [
    ("study", "mnist", "baseline", [0, 1, 2], "ok"),
    ("study", "mnist", "pixel_shuffle", [0, 1, 2], "ok"),
    ("study", "mnist", "feature_loss", [0], "ok"),
    ("study", "mnist", "pca", [0, 1], "ok"),
    ("study", "mnist", "resnet_scratch", [0], "failed"),
    ("study", "mnist", "resnet_pretrained", [0], "skipped"),
    ("denoise", "digits", "baseline", [0, 1, 2], "ok"),
    ("denoise", "digits", "mlp", [0, 1, 2], "ok"),
]


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    rng = np.random.default_rng(0)
    rows = [make_row(e, d, t, s, status, rng, corruption="gaussian" if d == "digits" else "none", threads=1,
                     parallel_cells=1, own_loss=t == "feature_loss", config_hash=f"{e[:2]}{t[:3]}{s}")
            for e, d, t, seeds, status in PLAN for s in seeds]  # fmt: skip
    return write_results(tmp_path_factory.mktemp("results"), rows), rows


@pytest.fixture(scope="module")
def report(results: tuple[Path, list[dict]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("report")
    assert cli.main(["report", "--results", str(results[0]), "--out", str(out)]) == 0
    return out


def test_the_report_writes_its_first_screen_pages_tables_and_figures(report: Path) -> None:
    readme = (report / "README.md").read_text()
    assert readme.index("## MNIST: does the study reproduce") < readme.index("## Every table")
    assert "(study_mnist.md)" in readme and "(denoise_digits.md)" in readme
    assert {p.name for p in (report / "tables").iterdir()} == {"statistics.csv", "study.csv", "flags.csv",
                                                               "unfinished.csv"}  # fmt: skip
    for stem, names in (("study_mnist", ("metrics", "study", "curves", "reconstructions")),
                        ("denoise_digits", ("metrics", "curves", "reconstructions"))):  # fmt: skip
        page = (report / f"{stem}.md").read_text()
        for name in names:
            assert (report / "figures" / f"{name}_{stem}.pdf").read_bytes().startswith(b"%PDF")
            assert f"figures/{name}_{stem}.png" in page
    assert len(readme.splitlines()) < 300 and max(map(len, readme.splitlines()[4:])) < 1000


def test_the_statistics_csv_holds_the_rows_aggregates(report: Path, results: tuple[Path, list[dict]]) -> None:
    stats = pd.read_csv(report / "tables" / "statistics.csv")
    ok = pd.DataFrame([r for r in results[1] if r["status"] == "ok"])
    expected = ok.groupby(["dataset", "technique"])["mse"].agg(["mean", "std", "count"])
    mse = stats[stats["metric"] == "mse"]
    for r in mse.to_dict("records"):
        e = expected.loc[("mnist" if r["table"] == "mnist" else "digits", r["technique"])]
        assert r["mean"] == pytest.approx(e["mean"]) and r["n"] == e["count"]
        assert (math_nan(r["sd"]) and e["count"] == 1) or r["sd"] == pytest.approx(e["std"])
    unfinished = pd.read_csv(report / "tables" / "unfinished.csv")
    assert sorted(unfinished["status"]) == ["failed", "skipped"]


def math_nan(x: float) -> bool:
    return x != x


def test_the_study_csv_sets_the_published_value_against_the_prediction_interval(report: Path) -> None:
    study = pd.read_csv(report / "tables" / "study.csv")
    stats = pd.read_csv(report / "tables" / "statistics.csv").set_index(["table", "technique", "metric"])
    for r in study[study["technique"] != "clean images"].to_dict("records"):
        mine = stats.loc[(r["table"], r["technique"], r["metric"])]
        assert r["pi_low"] == pytest.approx(mine["pi_low"], nan_ok=True)
        if r["inside"] in (True, False):
            assert r["inside"] == (mine["pi_low"] <= r["study"] <= mine["pi_high"])


def test_report_tex_compiles_with_pdflatex(results: tuple[Path, list[dict]], tmp_path: Path) -> None:
    if shutil.which("pdflatex") is None:
        if os.environ.get("AEBENCH_REQUIRE_PDFLATEX"):
            pytest.fail("pdflatex is not installed, and AEBENCH_REQUIRE_PDFLATEX (set by .ci/run) requires it")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-recommended lmodern; CI installs it)")
    notes = results[0] / "NOTES.md"
    notes.write_text("PCA ≈ lossless at rank ≤ 1024; 10⁴× the pixel term — σ = 0.1, “quoted”, naïve.\n" + "x" * 300)
    try:
        assert cli.main(["report", "--results", str(results[0]), "--out", str(tmp_path)]) == 0
    finally:
        notes.unlink()
    assert "lossless at rank" in (tmp_path / "study_mnist.md").read_text()
    done = subprocess.run(["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=240)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "report.pdf").stat().st_size > 10_000


@pytest.mark.parametrize(
    "line", [r"\end{verbatim}\input{/etc/passwd}", "＼ｅｎｄ｛ｖｅｒｂａｔｉｍ｝＼ｉｎｐｕｔ｛/etc/passwd｝"]
)
def test_a_notes_file_cannot_close_its_verbatim_block(line: str) -> None:
    tex = latex([Block("pre", f"Ran it.\n{line}\nDone."), Block("p", "a_b & 50 % {x}")])
    assert tex.count(r"\begin{verbatim}") == tex.count(r"\end{verbatim}") == 1
    outside = re.sub(r"\\begin\{verbatim\}.*?\\end\{verbatim\}", "", tex, flags=re.S)
    assert r"\input" not in outside and r"a\_b \& 50 \% \{x\}" in outside


def test_a_rerun_gives_identical_files(report: Path, results: tuple[Path, list[dict]]) -> None:
    def contents() -> dict[Path, bytes]:
        return {p.relative_to(report): p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()}

    first = contents()
    assert Path(MANIFEST) in first
    assert cli.main(["report", "--results", str(results[0]), "--out", str(report)]) == 0
    assert contents() == first


def small_results(folder: Path, experiment: str = "exp") -> Path:
    rows = [
        make_row(experiment, "digits", t, s, config_hash=f"{t[:2]}{s}") for t in ("baseline", "other") for s in range(3)
    ]
    return write_results(folder, rows, cells=False)


def run_report(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = cli.main(["report", *args])
    return code, capsys.readouterr().err.strip()


def test_the_report_refuses_to_replace_another_results_report(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    first, second, out = small_results(tmp_path / "a"), small_results(tmp_path / "b", "other"), tmp_path / "report"
    assert run_report(capsys, "--results", str(first), "--out", str(out))[0] == 0
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["results"] == ["../a"] and "exp_digits.md" in manifest["files"]
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    code, err = run_report(capsys, "--results", str(second), "--out", str(out))
    assert code == 2 and len(err.splitlines()) == 1 and "other results (../a)" in err and "--force" in err
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert run_report(capsys, "--results", str(second), "--out", str(out), "--force")[0] == 0
    assert not (out / "exp_digits.md").exists() and (out / "other_digits.md").is_file()


def test_report_files_no_manifest_accounts_for_are_not_overwritten(tmp_path: Path, capsys) -> None:
    out = tmp_path / "report"
    out.mkdir()
    (out / "README.md").write_text("someone's notes")
    code, err = run_report(capsys, "--results", str(small_results(tmp_path / "a")), "--out", str(out))
    assert code == 2 and "README.md" in err and "no aebench report manifest" in err
    assert (out / "README.md").read_text() == "someone's notes"


def test_what_a_killed_report_leaves_never_stops_its_rerun(tmp_path: Path) -> None:
    folder, out = small_results(tmp_path / "a"), tmp_path / "report"
    out.mkdir()
    claim(out, [folder], force=False)  # as far as a report gets before writing anything
    (out / "tables").mkdir()
    (out / "tables" / "statistics.csv.x1y2z3.tmp").write_text("half a file")  # atomic_write's, mid-write
    write_report([folder], out, command="test")
    assert list(out.rglob("*.tmp")) == [] and (out / "README.md").is_file()


@pytest.mark.slow
def test_a_report_killed_with_sigkill_reruns(results: tuple[Path, list[dict]], tmp_path: Path) -> None:
    command = [sys.executable, "-m", "aebench", "-q", "report", "--results", str(results[0]), "--out", "out"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not list((tmp_path / "out").glob("figures/*")) and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert subprocess.run(command, cwd=tmp_path, env=env, capture_output=True).returncode == 0
    assert list((tmp_path / "out").rglob("*.tmp")) == []


def test_cli_bad_results_folder_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["report", "--results", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err and "results.jsonl" in err
    (tmp_path / "results.jsonl").write_text("")
    assert cli.main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no rows" in capsys.readouterr().err


def test_the_generic_report_names_no_technique() -> None:
    """Technique facts come from the rows; only the study package (its published table) names techniques."""
    names = set(TECHNIQUES) - {"baseline", "compared", "reference"}  # "baseline" is also a role's name
    paths = sorted((REPO / "aebench" / "reporting").glob("*.py"))
    found = [f"{p.name}:{n.lineno}: {n.value!r}" for p in paths for n in ast.walk(ast.parse(p.read_text()))
             if isinstance(n, ast.Constant) and isinstance(n.value, str) and n.value in names]  # fmt: skip
    assert len(paths) > 5 and found == []


def test_make_report_takes_every_committed_results_folder_mnist_first(tmp_path: Path) -> None:
    for name in ("fashion", "mnist-latent32", "cifar", "mnist"):
        (tmp_path / "report" / "results" / name).mkdir(parents=True)
        (tmp_path / "report" / "results" / name / "results.jsonl").write_text("")
    shutil.copy(REPO / "Makefile", tmp_path / "Makefile")
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
    done = subprocess.run(["make", "--no-print-directory", "-n", "report"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, check=True)  # fmt: skip
    command = done.stdout.strip().splitlines()[-1]
    folders = command.split("--results ", 1)[1].split(" --out")[0].split()
    assert folders == [f"report/results/{n}" for n in ("mnist", "mnist-latent32", "cifar", "fashion")]


def test_the_first_screen_takes_the_table_of_most_of_the_studys_techniques(tmp_path: Path) -> None:
    """A baseline-only MNIST table listed first does not take the headline from the table of every technique."""
    rows = [make_row(e, "mnist", t, s, config_hash=f"{e[0]}{t[:3]}{s}", threads=1, parallel_cells=1)
            for e, techniques in (("a-small", ["baseline"]), ("b-full", ["baseline", "pixel_shuffle"]))
            for t in techniques for s in (0, 1, 2)]  # fmt: skip
    out = tmp_path / "report"
    write_report([write_results(tmp_path / "results", rows, cells=False)], out, "test")
    assert "Table [mnist (b-full)](b-full_mnist.md) beside" in (out / "README.md").read_text()
