"""The report regenerates every table and figure from results rows and cell folders, without data or training."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aebench import cli
from aebench.report.anchors import ANCHORS, CLEAN_ACCURACY
from aebench.report.figures import pareto_front
from aebench.results.schema import ROW_FIELDS, cell_folder
from aebench.results.store import append_row

METRICS = ["mae", "mse", "psnr", "ssim", "accuracy", "train_seconds", "images_per_second"]
# (experiment, dataset, technique, seeds, status, corruption)
PLAN = [
    ("study", "mnist", "baseline", [0, 1, 2], "ok", "none"),
    ("study", "mnist", "feature_loss", [0], "ok", "none"),
    ("study", "mnist", "pca", [0, 1], "ok", "none"),
    ("study", "mnist", "pixel_shuffle", [0], "failed", "none"),
    ("study", "mnist", "resnet_pretrained", [0], "skipped", "none"),
    ("denoise", "digits", "baseline", [0, 1], "ok", "gaussian"),
    ("denoise", "digits", "mlp", [0, 1], "ok", "gaussian"),
]
REASONS = {"failed": "RuntimeError: shapes do not match", "skipped": "no pretrained weights offline; run once online"}


def make_row(
    rng: np.random.Generator, experiment: str, dataset: str, technique: str, seed: int, status: str, corruption: str
) -> dict:
    row = dict.fromkeys(ROW_FIELDS)
    row.update(
        experiment=experiment,
        dataset=dataset,
        technique=technique,
        seed=seed,
        status=status,
        reason=REASONS.get(status, ""),
        corruption=corruption,
        epochs=2,
        device="cpu",
        torch_version="2.x",
        git_commit="abc1234",
        config_hash=f"h{seed}",
        aebench_version="0.1.0",
        finished_at=f"2025-01-0{seed + 1}T10:00:00",
    )
    if status == "ok":
        mse = float(rng.uniform(0.001, 0.05))
        row.update(
            mae=float(rng.uniform(0.01, 0.2)),
            mse=mse,
            psnr=-10 * np.log10(mse),
            ssim=float(rng.uniform(0.5, 1)),
            accuracy=float(rng.uniform(0.5, 0.99)),
            accuracy_clean=0.99 - 0.001 * seed,
            train_seconds=float(rng.uniform(1, 100)),
            images_per_second=float(rng.uniform(100, 5000)),
        )
    return row


def write_cell(folder: Path, rng: np.random.Generator, technique: str, channels: int) -> None:
    """The artefacts a finished cell leaves: history, samples, and (for some) latents and snapshots."""
    folder.mkdir(parents=True)
    if technique != "pca":
        history = [
            {
                "epoch": e,
                "phase": "train",
                "lr": 1e-3,
                "train_loss": 1 / e,
                "test_loss": float(rng.uniform(0.5, 1)) / e,
                "seconds": 1.0,
            }
            for e in (1, 2)
        ]
        (folder / "history.json").write_text(json.dumps(history))
    images = {k: rng.uniform(0, 1, (8, channels, 8, 8)).astype(np.float32) for k in ("input", "target", "output")}
    np.savez_compressed(folder / "samples.npz", **images)
    if technique == "baseline":
        np.savez_compressed(folder / "latents.npz", z=rng.normal(size=(50, 2)), labels=rng.integers(0, 10, 50))
        (folder / "snapshots.gif").write_bytes(b"GIF89a fake animation")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """A results folder with ok (one seed and several), failed and skipped rows, and fake cell folders."""
    folder = tmp_path_factory.mktemp("results")
    rng = np.random.default_rng(0)
    rows = []
    for experiment, dataset, technique, seeds, status, corruption in PLAN:
        for seed in seeds:
            row = make_row(rng, experiment, dataset, technique, seed, status, corruption)
            append_row(folder, row)
            rows.append(row)
            if status == "ok":
                write_cell(
                    cell_folder(folder, dataset, technique, seed, row["config_hash"]),
                    rng,
                    technique,
                    1 if dataset == "mnist" else 3,
                )
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


def test_report_writes_every_file(report: Path) -> None:
    readme = (report / "README.md").read_text()
    for name in ["results_study_mnist", "results_denoise_digits", "problems", "study_study_mnist"]:
        assert (report / "tables" / f"{name}.csv").stat().st_size > 0
    figures = [
        "metrics",
        "accuracy_vs_mse",
        "training_curves",
        "train_time",
        "reconstructions_study_mnist",
        "reconstructions_denoise_digits",
        "latents_study_mnist",
        "latents_denoise_digits",
    ]
    for name in figures:
        assert (report / "figures" / f"{name}.pdf").read_bytes().startswith(b"%PDF")
        assert f"figures/{name}.png" in readme
    gifs = sorted((report / "figures" / "snapshots").glob("*.gif"))
    assert [g.name for g in gifs] == ["denoise_digits_baseline_seed0.gif", "study_mnist_baseline_seed0.gif"]
    assert all(f"figures/snapshots/{g.name}" in readme for g in gifs)
    assert "[0, 1]" in readme and "clamped" in readme


@pytest.mark.parametrize(
    "png",
    [
        "metrics",
        "accuracy_vs_mse",
        "training_curves",
        "train_time",
        "reconstructions_denoise_digits",
        "latents_study_mnist",
    ],
)
def test_figures_are_readable_pngs(report: Path, png: str) -> None:
    width, height = png_size(report / "figures" / f"{png}.png")
    assert 300 <= width <= 4000 and 150 <= height <= 4000


def test_table_numbers_equal_aggregates_of_the_rows(report: Path, results: tuple[Path, list[dict]]) -> None:
    expected = expected_stats(results[1])
    for dataset, experiment in [("mnist", "study"), ("digits", "denoise")]:
        table = pd.read_csv(report / "tables" / f"results_{experiment}_{dataset}.csv").set_index("technique")
        techniques = sorted(expected.loc[dataset].index)
        assert sorted(table.index[table.index != "original images"]) == techniques  # failed and skipped excluded
        for technique in techniques:
            want = expected.loc[(dataset, technique)]
            assert table.loc[technique, "seeds"] == want[("mae", "count")]
            for metric in METRICS:
                assert table.loc[technique, f"{metric}_mean"] == pytest.approx(want[(metric, "mean")], rel=1e-12)
                if want[("mae", "count")] > 1:
                    assert table.loc[technique, f"{metric}_sd"] == pytest.approx(want[(metric, "std")], rel=1e-12)
                else:
                    assert np.isnan(table.loc[technique, f"{metric}_sd"])


def test_clean_accuracy_is_a_reference_row_over_seeds(report: Path, results: tuple[Path, list[dict]]) -> None:
    table = pd.read_csv(report / "tables" / "results_study_mnist.csv").set_index("technique")
    per_seed = (
        pd.DataFrame([r for r in results[1] if r["status"] == "ok" and r["dataset"] == "mnist"])
        .groupby("seed")["accuracy_clean"]
        .mean()
    )
    ceiling = table.loc["original images"]
    assert ceiling["role"] == "reference" and ceiling["seeds"] == len(per_seed)
    assert ceiling["accuracy_mean"] == pytest.approx(per_seed.mean()) and ceiling["accuracy_sd"] == pytest.approx(
        per_seed.std()
    )
    assert table.loc["pca", "role"] == "reference"


def markdown_rows(readme: str, heading: str) -> dict[str, list[str]]:
    """The rows of the first table under a markdown heading, by first cell."""
    section = readme.split(f"### {heading}\n", 1)[1].split("\n#", 1)[0]
    rows = [
        line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ") and "---" not in line
    ]
    return {cells[0].strip(): [c.strip() for c in cells[1:]] for cells in rows[1:]}


def test_best_technique_per_column_is_bold_and_references_never(report: Path, results: tuple[Path, list[dict]]) -> None:
    rows = markdown_rows((report / "README.md").read_text(), "mnist")
    means = expected_stats(results[1]).loc["mnist"].drop(index="pca")
    for index, (metric, lower) in enumerate(
        [
            ("mae", True),
            ("mse", True),
            ("psnr", False),
            ("ssim", False),
            ("accuracy", False),
            ("train_seconds", True),
            ("images_per_second", False),
        ],
        start=1,
    ):
        column = means[(metric, "mean")]
        best = column.idxmin() if lower else column.idxmax()
        for technique in means.index:
            assert rows[technique][index].startswith("**") == (technique == best), (metric, technique)
    assert not any(
        "**" in cell for name, cells in rows.items() if "floor" in name or "ceiling" in name for cell in cells
    )
    assert rows["feature_loss"][0] == "1" and "±" not in rows["feature_loss"][1]  # one seed: shown, no sd


def test_failed_and_skipped_cells_listed_with_reasons(report: Path) -> None:
    problems = pd.read_csv(report / "tables" / "problems.csv")
    assert sorted(zip(problems["technique"], problems["status"])) == [
        ("pixel_shuffle", "failed"),
        ("resnet_pretrained", "skipped"),
    ]
    readme = (report / "README.md").read_text()
    assert all(reason in readme for reason in REASONS.values())


def test_study_comparison_is_ours_over_published(report: Path, results: tuple[Path, list[dict]]) -> None:
    comparison = pd.read_csv(report / "tables" / "study_study_mnist.csv")
    assert not (report / "tables" / "study_denoise_digits.csv").exists()  # digits is not in the study
    assert set(comparison["technique"]) == {
        "baseline",
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
    for kind, env in re.findall(r"\\(begin|end)\{(\w+)\}", (report / "report.tex").read_text()):
        if kind == "begin":
            stack.append(env)
        else:
            assert stack and stack.pop() == env
    assert stack == []
    tex = (report / "report.tex").read_text()
    assert r"\toprule" in tex and r"\textbf{" in tex and r"\includegraphics" in tex


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


def test_rerun_gives_identical_tables_and_figures(report: Path, results: tuple[Path, list[dict]]) -> None:
    def contents() -> dict[Path, bytes]:
        return {p.relative_to(report): p.read_bytes() for p in sorted(report.rglob("*")) if p.is_file()}

    first = contents()
    assert cli.main(["report", "--results", str(results[0]), "--out", str(report)]) == 0
    assert contents() == first


def test_pareto_front_keeps_only_undominated_techniques() -> None:
    points = pd.DataFrame(
        {"mse": [0.01, 0.02, 0.03, 0.015], "accuracy": [0.8, 0.9, 0.85, 0.7]}, index=["a", "b", "c", "d"]
    )
    assert list(pareto_front(points).index) == ["a", "b"]


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
    pca = table.loc[("mse", "pca")]
    assert pca["paired_seeds"] == 2  # pca ran seeds 0 and 1, the baseline 0, 1 and 2
    assert pca["diff_mean"] == pytest.approx((mse["pca"] - mse["baseline"]).dropna().mean())
    assert pca["diff_low"] < pca["diff_mean"] < pca["diff_high"] and 0 <= pca["p_value"] <= 1
    assert table.loc[("mse", "feature_loss"), "paired_seeds"] == 1 and np.isnan(
        table.loc[("mse", "feature_loss"), "p_value"]
    )
    readme = (report / "README.md").read_text()
    assert "## What this run shows" in readme and "statistics across seeds" in readme and "95 % CI of Δ" in readme
    for name in ("paired_differences", "time_to_quality"):
        assert f"figures/{name}.png" in readme and png_size(report / "figures" / f"{name}.png")[0] >= 300
