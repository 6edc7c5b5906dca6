"""Every claim the report makes is true for its rows: like is compared with like, degenerate results are flagged
and claim nothing, tests are Holm-adjusted, and each generated sentence changes when rows contradict it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_rows import frame_of, make_row, only_group, write_results

from aebench.reporting.build import definitions, section, write_report
from aebench.reporting.findings import best_line, equal_time_sentence, findings, setting_phrase
from aebench.reporting.groups import groups, rows_of
from aebench.reporting.rows import load
from aebench.reporting.sanity import Flag, Flags, sanity_flags
from aebench.reporting.statistics import difference_lines, holm, seed_statistics
from aebench.reporting.tables import to_latex, to_markdown
from aebench.results.summary import finished

SEEDS = (0, 1, 2)
NO_POINTS = pd.DataFrame(columns=["group", "technique", "seed", "epoch", "seconds", "mse"])


def rows_for(values: dict[str, list[float]], metric: str = "mse", **fields) -> list[dict]:
    """ok rows, one per technique and seed, ``metric`` set per seed (other metrics random but fixed)."""
    return [
        make_row("exp", "digits", t, s, config_hash=f"{t[:3]}{s}", **{metric: v, **fields})
        for t, per_seed in values.items()
        for s, v in zip(SEEDS, per_seed)
    ]


def test_a_folder_with_two_settings_gets_a_table_each_and_no_test_across_them(tmp_path: Path) -> None:
    """Baseline at 3 and then at 6 epochs, pixel_shuffle at 3, into one folder: the 3-epoch table pairs the two
    3-epoch techniques, the 6-epoch one holds the baseline alone, and no test crosses the settings."""
    three = rows_for({"baseline": [0.010, 0.011, 0.012], "pixel_shuffle": [0.020, 0.022, 0.021]}, epochs=3)
    six = [make_row("exp", "digits", "baseline", s, config_hash=f"six{s}", mse=0.005, epochs=6) for s in SEEDS]
    folder = write_results(tmp_path / "res", three + six)
    frame = load([folder]).frame
    found = groups(frame)
    assert [g.setting.epochs for g in found] == [3, 6]
    assert [g.label for g in found] == ["digits (3 epochs)", "digits (6 epochs)"]
    by_epochs = {g.setting.epochs: rows_of(frame, g) for g in found}
    assert set(by_epochs[3]["technique"]) == {"baseline", "pixel_shuffle"} and set(by_epochs[6]["technique"]) == {
        "baseline"
    }
    three_stats = seed_statistics(by_epochs[3])
    mse = three_stats[(three_stats["metric"] == "mse") & (three_stats["technique"] == "pixel_shuffle")].iloc[0]
    assert mse["diff_mean"] == pytest.approx(np.mean([0.010, 0.011, 0.009]))  # against the 3-epoch baseline
    assert set(seed_statistics(by_epochs[6])["technique"]) == {"baseline"}
    readme = write_report([folder], tmp_path / "report", command="test").read_text()
    assert "### digits (3 epochs)" in readme and "### digits (6 epochs)" in readme
    assert "at equal epochs (3 epochs" in readme and "at equal epochs (6 epochs" in readme
    assert "3, 6 epochs" not in readme
    tables = sorted(p.name for p in (tmp_path / "report" / "tables").glob("results_*.csv"))
    assert tables == ["results_exp_digits_3-epochs.csv", "results_exp_digits_6-epochs.csv"]


def test_an_earlier_config_of_the_same_setting_is_superseded_not_mixed(tmp_path: Path) -> None:
    first = rows_for({"baseline": [0.5, 0.5, 0.5]})
    again = [make_row("exp", "digits", "baseline", s, config_hash=f"new{s}", mse=0.01) for s in SEEDS]
    other = rows_for({"other": [0.02] * 3})
    loaded = load([write_results(tmp_path, first + again + other, cells=False)])
    assert list(finished(loaded.frame)["mse"]) == [0.01] * 3 + [0.02] * 3 and len(loaded.superseded) == 3
    (group,) = groups(loaded.frame)
    said = "3 earlier rows not shown (baseline seeds 0, 1, 2)"
    shown = section(group, loaded.frame, [], NO_POINTS, loaded.superseded)
    assert said in to_markdown(shown.table) and said in to_latex(shown.table)
    alone = load([write_results(tmp_path / "alone", again + other, cells=False)])
    assert "earlier row" not in to_markdown(section(group, alone.frame, [], NO_POINTS, alone.superseded).table)


def recipe_rows(recipes: list[str | None]) -> list[dict]:
    """A baseline (3 seeds, one recipe) and pixel_shuffle seeds 0-2 at ``recipes`` (mse 0.1 on recipe "A", else
    0.3), seed 2 finished last."""
    baseline = rows_for({"baseline": [0.05] * 3}, recipe_hash="base")
    return baseline + [
        make_row(
            "exp", "digits", "pixel_shuffle", s, config_hash=f"pix{s}{r}", recipe_hash=r, mse=0.1 if r == "A" else 0.3
        )
        for s, r in zip(SEEDS, recipes)
    ]


def pixel_shuffle_line(loaded) -> tuple[dict, str]:
    """The pixel_shuffle line of the single results table, and the table in markdown."""
    (group,) = groups(loaded.frame)
    table = section(group, loaded.frame, [], NO_POINTS, loaded.superseded).table
    numbers = table.numbers.set_index("technique")
    return numbers.loc["pixel_shuffle"].to_dict(), to_markdown(table) + to_latex(table)


def test_seeds_of_two_recipes_are_not_averaged_the_latest_recipe_is_shown(tmp_path: Path) -> None:
    """Seeds 0-1 at recipe A, seed 2 rerun later at recipe B: the table shows seed 2 alone (flagged: too few seeds)
    and counts the two rows of the other recipe; the stamp says so too."""
    folder = write_results(tmp_path / "res", recipe_rows(["A", "A", "B"]), cells=False)
    line, text = pixel_shuffle_line(load([folder]))
    assert line["seeds"] == 1 and line["mse_mean"] == pytest.approx(0.3) and "too few seeds" in line["flags"]
    assert "2 earlier rows not shown (pixel_shuffle seeds 0, 1): finished cells of another recipe" in text
    assert "earlier config" not in text
    readme = write_report([folder], tmp_path / "report", command="test").read_text()
    assert "2 finished rows of another recipe of a technique" in readme


def test_seeds_of_one_recipe_or_of_unrecorded_recipes_are_averaged(tmp_path: Path) -> None:
    """The controls: all three seeds at one recipe, or two written before recipes were recorded beside one that
    records its recipe (a study continued by a newer aebench): all three averaged, nothing left out."""
    for name, recipes in (("same", ["B", "B", "B"]), ("old", [None, None, "B"]), ("none", [None] * 3)):
        loaded = load([write_results(tmp_path / name, recipe_rows(recipes), cells=False)])
        line, text = pixel_shuffle_line(loaded)
        assert line["seeds"] == 3 and "too few seeds" not in line["flags"], name
        assert "earlier row" not in text and not loaded.superseded, name


def test_a_row_recording_no_recipe_beside_two_recipes_is_left_out(tmp_path: Path) -> None:
    loaded = load([write_results(tmp_path, recipe_rows([None, "A", "B"]), cells=False)])
    line, text = pixel_shuffle_line(loaded)
    assert line["seeds"] == 1 and line["mse_mean"] == pytest.approx(0.3)
    assert "2 earlier rows not shown (pixel_shuffle seeds 0, 1)" in text


def flags_of(rows: list[dict], tmp: Path, samples: dict | None = None) -> Flags:
    return sanity_flags(finished(only_group(frame_of(rows, tmp))), samples or {})


def labels(flags: Flags, technique: str | None) -> list[str]:
    return [f.label for f in flags.flags if f.technique == technique]


@pytest.mark.parametrize(
    ("fields", "flagged"),
    [
        ({"mse": 0.12, "mse_mean_image": 0.1}, "ignores its input"),
        ({"mse": 0.05, "mse_mean_image": 0.1, "output_spread": 0.05}, "near-constant output"),
        ({"accuracy": 0.15}, "accuracy near chance"),
    ],
)
def test_a_degenerate_technique_is_flagged_and_a_sound_one_is_not(tmp_path: Path, fields: dict, flagged: str) -> None:
    sound = {"mse": 0.02, "mse_mean_image": 0.1, "output_spread": 0.8, "accuracy": 0.8}
    rows = rows_for({"baseline": [0.01] * 3}) + [
        make_row("exp", "digits", "odd", s, config_hash=f"o{s}", **{**sound, **fields}) for s in SEEDS
    ]
    assert labels(flags_of(rows, tmp_path / "bad"), "odd") == [flagged]
    fine = rows_for({"baseline": [0.01] * 3}) + [
        make_row("exp", "digits", "odd", s, config_hash=f"o{s}", **sound) for s in SEEDS
    ]
    assert labels(flags_of(fine, tmp_path / "good"), "odd") == []


def test_without_recorded_spreads_the_saved_test_images_decide(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    target = rng.uniform(0, 1, (8, 1, 8, 8))
    rows = rows_for({"baseline": [0.5] * 3}, mse_mean_image=None, output_spread=None)
    constant = {"target": target, "output": np.repeat(target.mean(0, keepdims=True), 8, 0), "input": target}
    flags = flags_of(rows, tmp_path / "a", {"baseline": constant})
    assert labels(flags, "baseline") == ["ignores its input"] and "estimated from the 8 saved" in flags.flags[0].reason
    rows = rows_for({"baseline": [1e-4] * 3}, mse_mean_image=None, output_spread=None)
    faithful = {"target": target, "output": target, "input": target}
    assert labels(flags_of(rows, tmp_path / "b", {"baseline": faithful}), "baseline") == []


def test_a_weak_classifier_bars_every_accuracy_claim(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.01] * 3, "other": [0.02] * 3}, accuracy_clean=0.4, accuracy=0.3)
    flags = flags_of(rows, tmp_path / "weak")
    assert labels(flags, None) == ["weak classifier"] and not flags.claimable("other", "accuracy")
    assert flags.claimable("other", "mse")
    stats = seed_statistics(only_group(frame_of(rows, tmp_path / "weak2")), flags)
    accuracy = stats[(stats["metric"] == "accuracy") & (stats["technique"] == "other")].iloc[0]
    assert math.isnan(accuracy["p_value"]) and "weak classifier" in accuracy["note"]
    assert labels(flags_of(rows_for({"baseline": [0.01] * 3}, accuracy_clean=0.9), tmp_path / "ok"), None) == []


def test_a_reference_at_the_data_rank_is_lossless(tmp_path: Path) -> None:
    def pca(**fields: object) -> list[dict]:
        return [make_row("exp", "digits", "pca", s, config_hash=f"p{s}", **{"mse": 0.003, **fields}) for s in SEEDS]

    at_64, base = rows_for({"baseline": [0.01] * 3}, latent=64), rows_for({"baseline": [0.01] * 3})
    assert labels(flags_of(at_64 + pca(latent=64, native_pixels=64), tmp_path / "a"), "pca") == ["lossless"]
    assert labels(flags_of(base + pca(latent=16, native_pixels=64), tmp_path / "b"), "pca") == []
    flags = flags_of(base + pca(native_pixels=None, mse=1e-7), tmp_path / "c")
    assert labels(flags, "pca") == ["lossless"] and "not recorded" in flags.of("pca")[0].reason
    contender = [make_row("exp", "digits", "wide", s, config_hash=f"w{s}", latent=64, native_pixels=64) for s in SEEDS]
    assert labels(flags_of(at_64 + contender, tmp_path / "d"), "wide") == []  # only a reference is a yardstick


def test_too_few_seeds_are_flagged_and_untested(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.01] * 3}) + [
        make_row("exp", "digits", "two", s, config_hash=f"t{s}") for s in (0, 1)
    ]
    flags = flags_of(rows, tmp_path / "a")
    assert labels(flags, "two") == ["too few seeds"]
    stats = seed_statistics(only_group(frame_of(rows, tmp_path / "b")), flags)
    assert stats.loc[stats["technique"] == "two", "p_value"].isna().all()


def test_holm_adjusts_a_family_of_p_values() -> None:
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.2]) == [0.2] and holm([]) == []
    assert holm([0.5, 0.6, 0.7]) == pytest.approx([1.0, 1.0, 1.0])


def test_significance_follows_the_holm_adjusted_p(tmp_path: Path) -> None:
    """A raw p of 0.040 is real alone and not once two more techniques are tested on the metric (Holm: 3 x 0.040)."""
    base = [0.010, 0.012, 0.011, 0.013]
    differences = {
        "a": [-0.0006, -0.0002, -0.0010, -0.0005],  # p = 0.040
        "b": [0.001, -0.002, 0.0015, -0.0005],  # p = 1.0
        "c": [0.003, 0.0, -0.001, 0.002],  # p = 0.35
    }

    def rows(techniques: list[str]) -> list[dict]:
        values = {"baseline": base, **{t: [b + d for b, d in zip(base, differences[t])] for t in techniques}}
        return [
            make_row("exp", "digits", t, s, config_hash=f"{t}{s}", mse=v)
            for t, vals in values.items()
            for s, v in enumerate(vals)
        ]

    alone = seed_statistics(only_group(frame_of(rows(["a"]), tmp_path / "alone")), metrics=("mse",)).set_index(
        "technique"
    )
    assert alone.loc["a", "p_value"] == pytest.approx(0.040, abs=5e-4) and alone.loc["a", "significant"]
    family = seed_statistics(
        only_group(frame_of(rows(["a", "b", "c"]), tmp_path / "family")), metrics=("mse",)
    ).set_index("technique")
    assert family.loc["a", "p_value"] == pytest.approx(alone.loc["a", "p_value"])
    assert (
        family.loc["a", "p_holm"] == pytest.approx(3 * alone.loc["a", "p_value"]) and not family.loc["a", "significant"]
    )
    assert family.loc["a", "tests"] == 3


def claims(rows: list[dict], tmp: Path, points: pd.DataFrame | None = None) -> list[str]:
    """The findings of the rows' single group, with the flags the report would compute."""
    frame = frame_of(rows, tmp)
    group = groups(frame)[0]
    mine = rows_of(frame, group)
    flags = sanity_flags(finished(mine), {})
    stats = seed_statistics(mine, flags)
    return findings(
        group,
        mine,
        stats,
        points
        if points is not None
        else pd.DataFrame(columns=["group", "technique", "seed", "epoch", "seconds", "mse"]),
        flags,
    )


def test_the_best_claim_skips_a_flagged_technique(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.010, 0.011, 0.012], "fast": [0.004, 0.0041, 0.0042], "slow": [0.02, 0.021, 0.022]})
    assert "MSE: **fast**" in claims(rows, tmp_path / "a")[1]
    broken = [
        dict(r, mse_mean_image=0.003) if r["technique"] == "fast" else r for r in rows
    ]  # fast no better than the mean image
    lines = claims(broken, tmp_path / "b")
    assert "MSE: **baseline**" in lines[1] and "fast" not in lines[1]
    assert "fast from every claim (ignores its input)" in lines[2]


def test_one_rankable_technique_makes_no_best_claim(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.010, 0.011, 0.012], "pca": [0.008, 0.008, 0.008]})
    line = claims(rows, tmp_path / "a")[1]
    assert line.startswith("No best claim: **baseline** is the only technique") and "pca, a reference" in line
    more = rows + rows_for({"other": [0.02, 0.02, 0.021]})
    assert claims(more, tmp_path / "b")[1].startswith("Best technique per metric")


@pytest.mark.parametrize(
    ("pca", "outcome"),
    [
        ([0.020, 0.0215, 0.0225], "baseline beats this reference"),
        ([0.005, 0.006, 0.0065], "baseline does not beat this reference, it is worse"),
        ([0.012, 0.010, 0.011], "do not differ significantly"),
    ],
)
def test_the_reference_sentence_follows_the_test(tmp_path: Path, pca: list[float], outcome: str) -> None:
    rows = rows_for({"baseline": [0.010, 0.011, 0.012], "pca": pca})
    sentence = next(line for line in claims(rows, tmp_path) if line.startswith("pca (a reference"))
    assert outcome in sentence and "latent 16" in sentence


def test_the_equal_time_sentence_leaves_out_references_and_flagged_techniques(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.010] * 3, "quick": [0.02] * 3, "pca": [0.001] * 3})
    frame = frame_of(rows, tmp_path)
    group = groups(frame)[0]
    points = pd.DataFrame(
        [{"group": group.label, "technique": t, "seed": 0, "epoch": e, "seconds": s * e, "mse": m / e}
         for t, s, m in (("baseline", 30.0, 0.02), ("quick", 20.0, 0.01)) for e in (1, 2, 3)]
        + [{"group": group.label, "technique": "pca", "seed": 0, "epoch": 0, "seconds": 1.0, "mse": 0.0001}]
    )  # fmt: skip
    roles = {"baseline": "baseline", "quick": "compared", "pca": "reference"}
    sentence = equal_time_sentence(points, group, roles, Flags())
    assert "at 60 s" in sentence and "lowest test MSE **quick**" in sentence and "pca" not in sentence
    flagged = Flags((Flag("quick", "odd", "quick is odd"),))
    assert equal_time_sentence(points, group, roles, flagged) is None  # one claimable technique: nothing to rank


def test_the_setting_phrase_states_the_length_and_the_images_used(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.01] * 3}, n_test=250, epochs=4)
    frame = frame_of(rows, tmp_path / "a")
    group = groups(frame)[0]
    assert (
        setting_phrase(group, rows_of(frame, group))
        == "at equal epochs (4 epochs, 3 seeds; 1,000 training images; 250 test images)"
    )
    budget = rows_for({"baseline": [0.01] * 3}, budget_seconds=60.0, epochs=15)
    frame = frame_of(budget, tmp_path / "b")
    group = groups(frame)[0]
    assert setting_phrase(group, rows_of(frame, group)).startswith(
        "at equal training time (a 60 s budget (at most 15 epochs)"
    )


def test_the_metric_definitions_follow_the_rows_versions(tmp_path: Path) -> None:
    def text(version: int | None, where: Path) -> str:
        frame = frame_of(rows_for({"baseline": [0.01] * 3}, metric_version=version), where)
        sections = [
            s
            for g in groups(frame)
            if (
                s := section(
                    g, frame, [], pd.DataFrame(columns=["group", "technique", "seed", "epoch", "seconds", "mse"])
                )
            )
        ]
        return " ".join(definitions(sections))

    assert "torchmetrics" in text(2, tmp_path / "v2") and "valid (unpadded)" in text(1, tmp_path / "v1")
    unknown = text(None, tmp_path / "none")
    assert "not recorded" in unknown and "torchmetrics" not in unknown


def test_best_line_without_any_rankable_technique(tmp_path: Path) -> None:
    rows = rows_for({"baseline": [0.5] * 3}, mse_mean_image=0.1)
    frame = frame_of(rows, tmp_path)
    mine = rows_of(frame, groups(frame)[0])
    flags = sanity_flags(finished(mine), {})
    line = best_line(seed_statistics(mine, flags), ["mse"], {"baseline": "baseline"}, flags, "baseline")
    assert line.startswith("No best claim: no technique")


def test_a_difference_without_spread_is_not_called_real(tmp_path: Path) -> None:
    """A technique 0.002 worse on every seed: no spread, so no t-test, and neither the table nor the findings
    call the difference real; a little spread makes it testable again."""
    base = [0.010, 0.011, 0.012]
    rows = rows_for({"baseline": base, "other": [b + 0.002 for b in base]})
    frame = frame_of(rows, tmp_path / "a")
    (group,) = groups(frame)
    s = section(group, frame, [], NO_POINTS)
    verdicts = {(r[0], r[1]): r[-1] for r in s.statistics.rows}
    assert verdicts[("MSE", "other")] == "no spread: the same difference on every seed, so no test"
    assert (
        "MSE: **baseline** (0.011000); the next, other, differs by +0.002000: not tested (no spread" in (s.findings[1])
    )
    assert "real" not in s.findings[1].split("MSE:")[1].split(";")[1]
    spread = rows_for({"baseline": base, "other": [b + d for b, d in zip(base, (0.002, 0.0021, 0.0019))]})
    assert "differs by +0.002000: real" in claims(spread, tmp_path / "b")[1]


def timed(threads: dict[str, int | None], parallel: int | None = 1, **fields: object) -> list[dict]:
    """Baseline and a technique 20 s faster (with spread), each timed with its own thread count."""
    times = {"baseline": [100.0, 104.0, 98.0], "other": [80.0, 83.0, 79.0]}
    return [
        make_row("exp", "digits", t, s, config_hash=f"{t[:3]}{s}", train_seconds=v, mse=0.01 + 0.001 * s,
                 threads=threads[t], parallel_cells=parallel, **fields)
        for t, per_seed in times.items()
        for s, v in zip(SEEDS, per_seed)
    ]  # fmt: skip


def time_texts(rows: list[dict], tmp: Path) -> tuple[str, str, list[str]]:
    """The train-time verdict of ``other``, the tables' footnotes and the findings of the rows' group."""
    frame = frame_of(rows, tmp)
    (group,) = groups(frame)
    s = section(group, frame, [], NO_POINTS)
    verdict = next(r[-1] for r in s.statistics.rows if r[:2] == ["Train time (s)", "other"])
    return verdict, " ".join(s.table.footnotes + s.statistics.footnotes), s.findings


def test_a_train_time_difference_under_unequal_conditions_is_not_called_real_unqualified(tmp_path: Path) -> None:
    verdict, notes, lines = time_texts(timed({"baseline": 1, "other": 4}), tmp_path / "a")
    assert verdict == "real (unequal conditions)"
    said = "not like-for-like (timed with threads per cell 1 (baseline), 4 (other))"
    assert said in notes and any(said in line for line in lines)
    console = difference_lines(only_group(frame_of(timed({"baseline": 1, "other": 4}), tmp_path / "c")),
                               ("train_seconds",))  # fmt: skip
    assert "real (p < 0.001; unequal conditions)" in console[0]
    verdict, notes, lines = time_texts(timed({"baseline": 1, "other": 1}), tmp_path / "b")  # timed alike
    assert verdict == "real" and "like-for-like" not in notes + " ".join(lines)


def test_train_times_without_recorded_conditions_are_not_said_to_differ(tmp_path: Path) -> None:
    """Rows written before threads were recorded (the committed MNIST rows): the report cannot know the times
    compare, and says only that, never that the conditions differed."""
    verdict, notes, lines = time_texts(timed({"baseline": None, "other": None}, parallel=None), tmp_path / "a")
    assert verdict == "real (conditions not recorded)"
    said = "not known to be like-for-like (the rows of baseline, other do not record threads per cell or cells at once)"
    assert said in notes and any(said in line for line in lines)
    assert "not like-for-like (" not in notes + " ".join(lines)
    half = timed({"baseline": None, "other": 2})  # one side recorded: still unknown, not unequal
    assert time_texts(half, tmp_path / "b")[0] == "real (conditions not recorded)"


def test_train_times_with_a_compiled_step_on_some_seeds_are_not_like_for_like(tmp_path: Path) -> None:
    """A cell whose compile probe won trains compiled, a neighbour eager: the same technique's seeds mix the two."""
    rows = [dict(r, step_mode="compiled") if (r["technique"], r["seed"]) == ("other", 0) else r
            for r in timed({"baseline": 1, "other": 1})]  # fmt: skip
    verdict, notes, lines = time_texts(rows, tmp_path / "a")
    assert verdict == "real (unequal conditions)"
    said = "not like-for-like (timed with training step eager (baseline, other), compiled (other))"
    assert said in notes and any(said in line for line in lines)
    unrecorded = [
        dict(r, step_mode=None) if r["technique"] == "baseline" else r for r in timed({"baseline": 1, "other": 1})
    ]
    verdict, notes, _ = time_texts(unrecorded, tmp_path / "b")
    assert verdict == "real (conditions not recorded)" and "the rows of baseline do not record training step" in notes


def test_a_precision_or_device_mix_stays_in_one_table_and_is_footnoted(tmp_path: Path) -> None:
    rows = [
        dict(r, precision="bf16", device="cuda") if r["technique"] == "other" else r
        for r in timed({"baseline": 1, "other": 1})
    ]
    frame = frame_of(rows, tmp_path / "a")
    (group,) = groups(frame)
    notes = section(group, frame, [], NO_POINTS).table.footnotes
    mixed = next(n for n in notes if n.startswith("Mixed conditions"))
    assert "precision fp32 (baseline), bf16 (other)" in mixed and "device cpu (baseline), cuda (other)" in mixed
    assert "quality differences across them may partly come from it" in mixed
    assert time_texts(rows, tmp_path / "b")[0] == "real (unequal conditions)"  # and the times differ in device
    alike = frame_of(timed({"baseline": 1, "other": 1}), tmp_path / "c")
    assert not any(n.startswith("Mixed") for n in section(groups(alike)[0], alike, [], NO_POINTS).table.footnotes)


TIME_COLUMNS = {"Train time (s)", "Images/s"}


def bold_headers(rows: list[dict], tmp: Path) -> set[str]:
    """The headers of the results table's columns that hold a bold cell."""
    frame = frame_of(rows, tmp)
    (group,) = groups(frame)
    table = section(group, frame, [], NO_POINTS).table
    return {table.headers[j] for _, j in table.bold}


@pytest.mark.parametrize(
    ("threads", "parallel"), [({"baseline": 1, "other": 4}, 1), ({"baseline": None, "other": None}, None)]
)
def test_times_that_do_not_compare_are_not_ranked_in_bold(tmp_path: Path, threads: dict, parallel: int | None) -> None:
    """other is 20 s faster on every seed: timed alike it is bold on train time; timed with other threads, or with
    the conditions not recorded, neither time column has a bold cell, while the quality columns still do."""
    alike = bold_headers(timed({"baseline": 1, "other": 1}), tmp_path / "alike")
    assert "Train time (s)" in alike and "MSE" in alike
    unlike = timed(threads, parallel=parallel)
    shown = bold_headers(unlike, tmp_path / "unlike")
    assert not shown & TIME_COLUMNS and "MSE" in shown
    frame = frame_of(unlike, tmp_path / "again")
    (group,) = groups(frame)
    table = section(group, frame, [], NO_POINTS).table
    assert any("so neither column is ranked (none in bold)" in n for n in table.footnotes)
    assert "80.7" in to_markdown(table) and "**80.7" not in to_markdown(table)  # the value stays, unbolded


def time_points(group_label: str) -> pd.DataFrame:
    """Curves on which other reaches the lower MSE when the first technique finishes."""
    return pd.DataFrame(
        [{"group": group_label, "technique": t, "seed": 0, "epoch": e, "seconds": s * e, "mse": m / e}
         for t, s, m in (("baseline", 30.0, 0.02), ("other", 20.0, 0.01)) for e in (1, 2, 3)]
    )  # fmt: skip


def test_the_equal_time_sentence_names_no_winner_where_times_do_not_compare(tmp_path: Path) -> None:
    def sentence(rows: list[dict], where: Path) -> str:
        frame = frame_of(rows, where)
        (group,) = groups(frame)
        lines = section(group, frame, [], time_points(group.label)).findings
        return next(line for line in lines if line.startswith("At equal training time"))

    alike = sentence(timed({"baseline": 1, "other": 1}), tmp_path / "a")
    assert "lowest test MSE **other**" in alike and "no ranking" not in alike
    unequal = sentence(timed({"baseline": 1, "other": 4}), tmp_path / "b")
    assert "**" not in unequal and "lowest" not in unequal
    assert unequal.endswith("the times are not like-for-like, so this is no ranking.") and "other 0.003333" in unequal
    unknown = sentence(timed({"baseline": None, "other": None}, parallel=None), tmp_path / "c")
    assert "**" not in unknown and unknown.endswith("not known to be like-for-like, so this is no ranking.")


def test_a_train_time_difference_is_bold_only_where_its_times_compare(tmp_path: Path) -> None:
    def bold_time_difference(rows: list[dict], tmp: Path) -> bool:
        frame = frame_of(rows, tmp)
        table = section(groups(frame)[0], frame, [], NO_POINTS).statistics
        i = next(i for i, r in enumerate(table.rows) if r[:2] == ["Train time (s)", "other"])
        return (i, 5) in table.bold

    assert bold_time_difference(timed({"baseline": 1, "other": 1}), tmp_path / "a")  # real, timed alike
    assert not bold_time_difference(timed({"baseline": 1, "other": 4}), tmp_path / "b")  # real, unequal
    assert not bold_time_difference(timed({"baseline": None, "other": None}, parallel=None), tmp_path / "c")


def test_a_cell_skipped_before_loading_its_data_stands_in_the_setting_it_agrees_with(tmp_path: Path) -> None:
    """A skipped row records no image counts: it joins the group whose setting agrees with all it does record (the
    study comparison then gives its reason, tests/test_study.py); one of another latent stays out."""
    rows = rows_for({"baseline": [0.010, 0.011, 0.012]})
    rows += [make_row("exp", "digits", "resnet_pretrained", 0, "skipped", config_hash="rp0")]
    rows += [make_row("exp", "digits", "resnet_scratch", 0, "skipped", config_hash="rs0", latent=8)]
    grouped = only_group(frame_of(rows, tmp_path))
    assert sorted(grouped["technique"].unique()) == ["baseline", "resnet_pretrained"]
    assert grouped.loc[grouped["technique"] == "resnet_pretrained", "n_train"].isna().all()
