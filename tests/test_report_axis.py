"""A sweep in the report: each technique against the reference at every point of the axis (paired, Holm over the
points) in the statistics frame, the points where a gain is real in words, and the figure and page that show them.
The rows are built so that a gain is real at the small latents only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from report_rows import make_row, stats_of, write_results
from scipy import stats as sps

from aebench.reporting import words
from aebench.reporting.build import write_report
from aebench.reporting.stats import holm

SEEDS = (0, 1, 2)
LATENTS = (4, 8, 16, 32)
PCA = {4: 0.040, 8: 0.030, 16: 0.020, 32: 0.010}
JITTER = (0.0002, -0.0001, 0.0003)
# technique -> latent -> per-seed MSE minus the reference's: a clear gain at 4 and 8, noise around 0 at 16 and 32
GAP = {
    "baseline": {4: (-0.0100, -0.0102, -0.0099), 8: (-0.0080, -0.0079, -0.0082), 16: (0.002, -0.003, 0.001),
                 32: (-0.001, 0.002, -0.0005)},
    "other": dict.fromkeys(LATENTS, (0.001, -0.001, 0.0005)),
}  # fmt: skip


def mse(technique: str, latent: int, seed: int) -> float:
    gap = 0.0 if technique == "pca" else GAP[technique][latent][seed]
    return PCA[latent] + JITTER[seed] + gap


def sweep_rows(techniques=("baseline", "other", "pca"), **fields) -> list[dict]:
    return [make_row("rate", "digits", t, s, config_hash=f"{t[:3]}{n}x{s}", latent=n, axes={"model.latent": n},
                     mse=mse(t, n, s), **fields) for n in LATENTS for t in techniques for s in SEEDS]  # fmt: skip


def test_each_technique_is_tested_against_the_reference_at_each_point_with_holm_over_the_points(tmp_path) -> None:
    stats, _ = stats_of(sweep_rows(), tmp_path)
    mine = stats[stats["metric"] == "mse"]
    assert set(mine["series"]) == {"digits (rate)"} and set(mine["axis"]) == {"model.latent"}
    assert (mine.loc[mine["technique"] == "pca", "ref_note"] == "the reference").all()
    for technique in ("baseline", "other"):
        line = mine[mine["technique"] == technique].sort_values("point")
        assert list(line["point"]) == list(LATENTS)
        p = []
        for n, r in zip(LATENTS, line.to_dict("records")):
            ours = [mse(technique, n, s) for s in SEEDS]
            ref = [mse("pca", n, s) for s in SEEDS]
            assert r["ref_diff"] == pytest.approx(np.mean(np.subtract(ours, ref)))
            p.append(sps.ttest_rel(ours, ref).pvalue)
            assert r["ref_p"] == pytest.approx(p[-1])
        assert list(line["ref_p_holm"]) == pytest.approx(holm(p))  # one family: this technique's points
        assert (line["ref_tests"] == len(LATENTS)).all()
    # the baseline's own table statistics stay as they were: the reference tests are extra columns
    assert (mine.loc[mine["technique"] == "baseline", "note"] == "the baseline").all()


def test_the_gain_is_real_at_the_small_latents_only_and_the_words_say_where(tmp_path: Path) -> None:
    stats, _ = stats_of(sweep_rows(), tmp_path)
    mse_rows = stats[(stats["metric"] == "mse") & (stats["technique"] == "baseline")].sort_values("point")
    assert list(mse_rows["ref_significant"]) == [True, True, False, False]
    lines = words.axis_lines(stats[stats["series"] == "digits (rate)"])
    baseline = next(line for line in lines if line.startswith("**baseline** against pca"))
    assert "MSE better at 4, 8;" in baseline and "Holm over 4 points of model.latent" in baseline
    other = next(line for line in lines if line.startswith("**other** against pca"))
    assert "MSE better at no point" in other


def test_a_flagged_point_is_not_tested_and_a_sweep_without_reference_tests_nothing(tmp_path: Path) -> None:
    rows = sweep_rows()
    for row in rows:
        if row["technique"] == "other" and row["latent"] == 4:
            row["mse"] = 0.5  # worse than the mean image (0.1): ignores its input
    stats, _ = stats_of(rows, tmp_path / "flagged")
    other = stats[(stats["technique"] == "other") & (stats["metric"] == "mse")].sort_values("point")
    assert other["ref_note"].iloc[0].startswith("flagged: ignores its input") and other["ref_p"].iloc[1:].notna().all()
    assert (other["ref_tests"].iloc[1:] == 3).all()  # the family is the points tested


ONE, TWO = [{"epochs": 15, "lr": None}], [{"epochs": 5, "lr": 0.003}, {"epochs": 10, "lr": None}]
# a 2 x 2 ablation of one technique, per-seed MSE minus 0.01: the dihedral flips gain 0.002, the cycles nothing
ARMS = {(0, "affine"): (0.0, 0.0, 0.0), (0, "dihedral"): (-0.0021, -0.0019, -0.0020),
        (1, "affine"): (0.0001, -0.00015, 0.00004), (1, "dihedral"): (-0.0020, -0.0022, -0.0019)}  # fmt: skip


def test_without_a_reference_the_varied_axes_are_one_axis_tested_against_its_first_point(tmp_path: Path) -> None:
    rows = [
        make_row(
            "ablation",
            "digits",
            "baseline",
            s,
            config_hash=f"c{c}{a}{s}",
            mse=0.01 + JITTER[s] + gap[s],
            axes={"train.cycles": (ONE, TWO)[c], "data.augment_style": a},
        )
        for (c, a), gap in reversed(ARMS.items())
        for s in SEEDS
    ]  # fmt: skip  (rows in any order)
    stats, _ = stats_of(rows, tmp_path)
    mine = stats[stats["metric"] == "mse"].set_index("point")
    assert set(mine["series"]) == {"digits (ablation)"} and set(mine["axis"]) == {"train.cycles × data.augment_style"}
    first = "epochs 15 · affine"  # the points in order: by their words
    assert mine.loc[first, "ref_note"] == "the reference" and np.isnan(mine.loc[first, "ref_diff"])
    p = []
    for (c, a), gap in list(ARMS.items())[1:]:
        r = mine.loc[f"{('epochs 15', 'epochs 5, lr 0.003 + epochs 10')[c]} · {a}"]
        assert r["ref_diff"] == pytest.approx(np.mean(gap)) and r["ref_tests"] == 3
        p.append(sps.ttest_rel(np.add(gap, 1), np.ones(3)).pvalue)
        assert r["ref_p"] == pytest.approx(p[-1])
    assert [mine.loc[f"epochs {e} · {a}", "ref_significant"] for e, a in
            (("15", "dihedral"), ("5, lr 0.003 + epochs 10", "affine"), ("5, lr 0.003 + epochs 10", "dihedral"))] == [
        True, False, True]  # fmt: skip
    line = words.axis_lines(stats[stats["series"] == "digits (ablation)"])[0]
    assert line.startswith(f"**baseline** against itself at {first}:") and "Holm over 3 points" in line


def test_only_the_axis_with_several_values_is_drawn_and_a_table_without_axis_is_on_none(tmp_path: Path) -> None:
    rows = [{**r, "axes": {"model.latent": 8, "train.epochs": r["latent"]}, "latent": 8} for r in sweep_rows()]
    rows += [make_row("plain", "digits", t, s, config_hash=f"p{t[:3]}{s}") for t in ("baseline", "pca") for s in SEEDS]
    stats, _ = stats_of(rows, tmp_path)
    swept = stats[stats["series"].notna()]
    assert set(swept["axis"]) == {"train.epochs"} and set(swept["series"]) == {"digits (rate)"}
    assert stats.loc[stats["series"].isna(), "table"].str.contains("plain").all()


def test_the_report_draws_the_axis_figure_on_its_page_linked_from_the_first_screen(tmp_path: Path) -> None:
    folder = write_results(tmp_path / "results", sweep_rows())
    write_report([folder], tmp_path / "report", command="test")
    readme = (tmp_path / "report" / "README.md").read_text()
    assert "## Along an axis" in readme and "(axis_digits-rate.md)" in readme
    page = (tmp_path / "report" / "axis_digits-rate.md").read_text()
    assert "figures/axis_digits-rate.png" in page and "**baseline** against pca" in page
    for suffix in ("png", "pdf"):
        assert (tmp_path / "report" / "figures" / f"axis_digits-rate.{suffix}").stat().st_size > 1000
    for n in LATENTS:
        assert f"[{n}](rate_digits_model.latent-{n}.md)" in page
        assert (tmp_path / "report" / f"rate_digits_model.latent-{n}.md").is_file()
