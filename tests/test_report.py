"""The report regenerates every table and figure from results rows and cell folders, without data or training."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_rows import make_row, write_results

from aebench import cli
from aebench.reporting.anchors import ANCHORS, CLEAN_ACCURACY
from aebench.reporting.manifest import MANIFEST

METRICS = ["mae", "mse", "psnr", "ssim", "accuracy", "train_seconds", "images_per_second"]
# (experiment, dataset, technique, seeds, status, corruption)
PLAN = [
    ("study", "mnist", "baseline", [0, 1, 2], "ok", "none"),
    ("study", "mnist", "pixel_shuffle", [0, 1, 2], "ok", "none"),
    ("study", "mnist", "feature_loss", [0], "ok", "none"),
    ("study", "mnist", "pca", [0, 1], "ok", "none"),
    ("study", "mnist", "resnet_scratch", [0], "failed", "none"),
    ("study", "mnist", "resnet_pretrained", [0], "skipped", "none"),
    ("denoise", "digits", "baseline", [0, 1, 2], "ok", "gaussian"),
    ("denoise", "digits", "mlp", [0, 1, 2], "ok", "gaussian"),
]
REASONS = {"failed": "RuntimeError: shapes do not match", "skipped": "no pretrained weights offline; run once online"}


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A results folder with ok (one seed and several), failed and skipped rows, and fake cell folders."""
    rng = np.random.default_rng(0)
    rows = [
        make_row(
            experiment,
            dataset,
            technique,
            seed,
            status,
            rng,
            corruption=corruption,
            own_loss=technique == "feature_loss",
            latent=2 if dataset == "digits" else 16,
            threads=1,  # timed alike, so the time columns rank too
            parallel_cells=1,
        )
        for experiment, dataset, technique, seeds, status, corruption in PLAN
        for seed in seeds
    ]
    folder = write_results(tmp_path_factory.mktemp("results"), rows)
    for technique in ("baseline", "mlp"):
        for cell in (folder / "cells" / "digits" / technique).iterdir():
            labels = rng.integers(0, 10, 50)
            np.savez_compressed(cell / "latents.npz", z=rng.normal(size=(50, 2)), labels=labels,
                                class_names=np.array([f"class {k}" for k in range(10)]))  # fmt: skip
            (cell / "snapshots.gif").write_bytes(b"GIF89a fake animation")
    return folder, rows


@pytest.fixture(scope="module")
def report(results: tuple[Path, list[dict]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report written through the command line."""
    out = tmp_path_factory.mktemp("report")
    assert cli.main(["report", "--results", str(results[0]), "--out", str(out)]) == 0
    return out


def expected_stats(rows: list[dict]) -> pd.DataFrame:
    """Mean, sd and seed count per (dataset, technique) recomputed here from the raw ok rows."""
    ok = pd.DataFrame([r for r in rows if r["status"] == "ok"])
    return ok.groupby(["dataset", "technique"])[METRICS].agg(["mean", "std", "count"])


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


FIGURES = ["metrics", "accuracy_vs_mse", "paired_differences", "training_curves", "time_to_quality", "reconstructions"]


def test_report_writes_every_file(report: Path) -> None:
    readme = (report / "README.md").read_text()
    for name in [
        "results_study_mnist",
        "results_denoise_digits",
        "statistics_study_mnist",
        "problems",
        "study_study_mnist",
    ]:
        assert (report / "tables" / f"{name}.csv").stat().st_size > 0
    for stem in ("study_mnist", "denoise_digits"):
        for name in FIGURES:
            assert (report / "figures" / f"{name}_{stem}.pdf").read_bytes().startswith(b"%PDF"), name
            assert f"figures/{name}_{stem}.png" in readme
    assert (report / "figures" / "latents_denoise_digits.png").is_file()
    gifs = sorted((report / "figures" / "snapshots").glob("*.gif"))
    assert [g.name for g in gifs] == ["denoise_digits_baseline_seed0.gif", "denoise_digits_mlp_seed0.gif"]
    assert all(f"figures/snapshots/{g.name}" in readme for g in gifs)
    assert "[0, 1]" in readme and "clamped" in readme


@pytest.mark.parametrize("stem", ["study_mnist", "denoise_digits"])
def test_figures_are_readable_pngs(report: Path, stem: str) -> None:
    for name in FIGURES:
        width, height = png_size(report / "figures" / f"{name}_{stem}.png")
        assert 300 <= width <= 2400 and 150 <= height <= 2400, name


def test_table_numbers_equal_aggregates_of_the_rows(report: Path, results: tuple[Path, list[dict]]) -> None:
    expected = expected_stats(results[1])
    for dataset, experiment in [("mnist", "study"), ("digits", "denoise")]:
        table = pd.read_csv(report / "tables" / f"results_{experiment}_{dataset}.csv").set_index("technique")
        techniques = sorted(expected.loc[dataset].index)
        assert sorted(table.index[table.index != "original images"]) == techniques  # failed and skipped excluded
        assert set(table["epochs"]) == {2} and set(table["n_train"]) == {1000} and set(table["n_test"]) == {200}
        for technique in techniques:
            want = expected.loc[(dataset, technique)]
            assert table.loc[technique, "seeds"] == want[("mae", "count")]
            for metric in METRICS:
                assert table.loc[technique, f"{metric}_mean"] == pytest.approx(want[(metric, "mean")], rel=1e-12)
                if want[("mae", "count")] > 1:
                    assert table.loc[technique, f"{metric}_sd"] == pytest.approx(want[(metric, "std")], rel=1e-12)
                else:
                    assert np.isnan(table.loc[technique, f"{metric}_sd"])


def test_clean_accuracy_is_a_ceiling_row_counted_once_per_classifier(
    report: Path, results: tuple[Path, list[dict]]
) -> None:
    """One classifier serves every seed: its clean accuracy, repeated on each row, is one measurement (no sd)."""
    table = pd.read_csv(report / "tables" / "results_study_mnist.csv").set_index("technique")
    ok = pd.DataFrame([r for r in results[1] if r["status"] == "ok" and r["dataset"] == "mnist"])
    assert ok["seed"].nunique() > 1 and ok["accuracy_clean"].nunique() == 1
    ceiling = table.loc["original images"]
    assert ceiling["role"] == "ceiling" and ceiling["seeds"] == 1 and pd.isna(ceiling["accuracy_sd"])
    assert ceiling["accuracy_mean"] == pytest.approx(ok["accuracy_clean"].iloc[0])
    assert table.loc["pca", "role"] == "reference" and table.loc["baseline", "role"] == "baseline"


def markdown_rows(readme: str, heading: str) -> dict[str, list[str]]:
    """The rows of the first table under a markdown heading, by first cell."""
    section = readme.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [
        line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ") and "---" not in line
    ]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_the_best_claimable_technique_per_column_is_bold(report: Path, results: tuple[Path, list[dict]]) -> None:
    """A reference (pca) and a flagged technique (feature_loss: one seed) are never bold."""
    rows = markdown_rows((report / "README.md").read_text(), "mnist")
    means = expected_stats(results[1]).loc["mnist"].drop(index=["pca", "feature_loss"])
    for index, metric in enumerate(METRICS, start=1):
        column = means[(metric, "mean")]
        lower = metric in ("mae", "mse", "train_seconds")
        best = column.idxmin() if lower else column.idxmax()
        for technique in means.index:
            assert rows[technique][index].startswith("**") == (technique == best), (metric, technique)
    for name, cells in rows.items():
        if not name.startswith(("baseline", "pixel_shuffle")):
            assert not any("**" in cell for cell in cells), name
    assert rows["feature_loss"][0] == "1" and "±" not in rows["feature_loss"][1]  # one seed: shown, no sd
    assert rows["feature_loss"][-1] == "too few seeds" and rows["pca (reference)"][-1] == "too few seeds"


def test_failed_and_skipped_cells_listed_with_reasons(report: Path) -> None:
    problems = pd.read_csv(report / "tables" / "problems.csv")
    assert sorted(zip(problems["technique"], problems["status"])) == [
        ("resnet_pretrained", "skipped"),
        ("resnet_scratch", "failed"),
    ]
    readme = (report / "README.md").read_text()
    assert all(reason in readme for reason in REASONS.values())


def test_study_comparison_is_ours_over_published(report: Path, results: tuple[Path, list[dict]]) -> None:
    comparison = pd.read_csv(report / "tables" / "study_study_mnist.csv")
    assert not (report / "tables" / "study_denoise_digits.csv").exists()  # digits is not in the study
    assert set(comparison["technique"]) == {
        "baseline",
        "pixel_shuffle",
        "feature_loss",
        "original images",
    }  # only ok cells the study has
    expected = expected_stats(results[1])
    for record in comparison.to_dict("records"):
        if record["technique"] == "original images":
            study = CLEAN_ACCURACY["mnist"]
        else:
            study = getattr(ANCHORS[("mnist", record["technique"])], record["metric"])
            assert record["mean"] == pytest.approx(
                expected.loc[("mnist", record["technique"]), (record["metric"], "mean")]
            )
        assert record["study"] == pytest.approx(study)
        assert record["ratio"] == pytest.approx(record["mean"] / study)
    readme = (report / "README.md").read_text()
    assert "**Shorter** than the study: 2 epochs (the study: 15)." in readme  # the rows ran 2 epochs


def test_latex_environments_are_balanced(report: Path) -> None:
    stack = []
    tex = (report / "report.tex").read_text()
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", tex):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env
    assert stack == []
    assert r"\toprule" in tex and r"\textbf{" in tex and r"\includegraphics" in tex
    assert tex.isascii()


def test_report_tex_compiles_with_pdflatex(report: Path, results: tuple[Path, list[dict]], tmp_path: Path) -> None:
    if shutil.which("pdflatex") is None:
        if os.environ.get("AEBENCH_REQUIRE_PDFLATEX"):
            pytest.fail("pdflatex is not installed, and AEBENCH_REQUIRE_PDFLATEX (set by .ci/run) requires it")
        pytest.skip("pdflatex is not installed (apt-get install texlive-latex-recommended lmodern; CI installs it)")
    notes = results[0] / "NOTES.md"
    notes.write_text(
        "PCA ≈ lossless at rank ≤ 1024; 10⁴× the pixel term — σ = 0.1, “quoted”, naïve.\n" + "x" * 300 + "\n"
    )
    try:
        assert cli.main(["report", "--results", str(results[0]), "--out", str(tmp_path)]) == 0
    finally:
        notes.unlink()
    done = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", "report.tex"],
        cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:]
    assert (tmp_path / "report.pdf").stat().st_size > 10_000
    log = (tmp_path / "report.log").read_text(errors="replace")
    overfull = [float(w) for w in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert not overfull or max(overfull) < 20, overfull


def test_reproducibility_stamp(report: Path) -> None:
    readme = (report / "README.md").read_text().split("## Reproducibility", 1)[1]
    for fact in [
        "0.1.0",
        "abc1234",
        "2.x",
        "cpu",
        "2025-01-01T10:00:00 to 2025-01-03T10:00:00",
        "python -m aebench report",
    ]:
        assert fact in readme
    assert "**training images**: 1000" in readme and "1000.0" not in readme


def test_a_results_folder_notes_file_is_shown_verbatim(results: tuple[Path, list[dict]], tmp_path: Path) -> None:
    notes = results[0] / "NOTES.md"
    notes.write_text("Ran `make bench-offline` on a 2-core Xeon; 71 min in all.\n")
    try:
        assert cli.main(["report", "--results", str(results[0]), "--out", str(tmp_path)]) == 0
    finally:
        notes.unlink()
    readme = (tmp_path / "README.md").read_text().split("### How these results were produced", 1)[1]
    assert "Ran `make bench-offline` on a 2-core Xeon; 71 min in all." in readme
    assert "71 min in all." in (tmp_path / "report.tex").read_text()


def test_rerun_gives_identical_files(report: Path, results: tuple[Path, list[dict]]) -> None:
    def contents() -> dict[Path, bytes]:
        return {p.relative_to(report): p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()}

    first = contents()
    assert Path(MANIFEST) in first
    assert cli.main(["report", "--results", str(results[0]), "--out", str(report)]) == 0
    assert contents() == first


def test_cli_bad_results_folder_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["report", "--results", str(tmp_path / "missing"), "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "missing" in err and "results.jsonl" in err
    (tmp_path / "results.jsonl").write_text("")
    assert cli.main(["report", "--results", str(tmp_path), "--out", str(tmp_path / "r")]) == 2
    assert "no rows" in capsys.readouterr().err


def test_statistics_table_pairs_each_technique_with_the_baseline_on_shared_seeds(
    report: Path, results: tuple[Path, list[dict]]
) -> None:
    table = pd.read_csv(report / "tables" / "statistics_study_mnist.csv").set_index(["metric", "technique"])
    ok = pd.DataFrame([r for r in results[1] if r["status"] == "ok" and r["dataset"] == "mnist"])
    mse = ok.pivot_table(index="seed", columns="technique", values="mse")
    shuffle = table.loc[("mse", "pixel_shuffle")]
    assert shuffle["paired_seeds"] == 3
    assert shuffle["diff_mean"] == pytest.approx((mse["pixel_shuffle"] - mse["baseline"]).mean())
    assert shuffle["diff_low"] < shuffle["diff_mean"] < shuffle["diff_high"] and 0 <= shuffle["p_value"] <= 1
    assert shuffle["p_holm"] == pytest.approx(shuffle["p_value"])  # the only technique tested: a family of one
    for untested in ("pca", "feature_loss"):  # two paired seeds, one: too few for a test
        assert (
            np.isnan(table.loc[("mse", untested), "p_value"])
            and "too few seeds" in table.loc[("mse", untested), "note"]
        )
    readme = (report / "README.md").read_text()
    assert "## What this run shows" in readme and "statistics across seeds" in readme and "95 % CI of Δ" in readme
