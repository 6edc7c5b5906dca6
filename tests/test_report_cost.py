"""The controlled cost in the report: the statistics frame's cost rows from a generated cost.json, 'cheaper'/'dearer'
(bold) only where the ratio's CI excludes 1, fits and one-offs as seconds (never a ratio), the study's time ratios
beside ours, and the equal-time read-off on baseline-equivalent time ranking otherwise than the sweep's own clocks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from report_rows import make_row, write_results

from aebench.reporting.build import results_table, write_report
from aebench.reporting.cost import COST, FIT, ONE_OFF, equivalent_curves, read_off
from aebench.reporting.rows import curves
from aebench.reporting.stats import analyse
from aebench.reporting.study import comparison
from aebench.results.cost import write_cost
from aebench.results.schema import cell_folder

SEEDS = (0, 1, 2)
MACHINE = {"device": "cpu", "name": "Test CPU", "flags": ["avx2"], "torch": "2.x", "threads": 1}
BASE_STEP = 0.5  # the baseline's controlled seconds per step
SETTINGS = {"train.batch_size": 100}  # 1,000 training images: 10 steps per epoch


def step(dataset: str, technique: str, ratio: float, low: float, high: float, pairs: int = 9) -> dict:
    return {"dataset": dataset, "technique": technique, "kind": "step", "ratio": ratio, "ci_low": low,
            "ci_high": high, "pairs": pairs, "seconds_per_step": BASE_STEP * (ratio if technique != "baseline" else 1),
            "baseline_seconds_per_step": BASE_STEP}  # fmt: skip


def results(folder: Path, dataset: str, techniques: dict[str, list[float]], entries: list[dict], **fields) -> Path:
    """ok rows (three seeds; ``techniques``: each one's test MSE per epoch, also its final MSE) with histories as
    given, and the folder's cost.json of ``entries``."""
    epochs = len(next(iter(techniques.values())))
    rows = [make_row("exp", dataset, t, s, config_hash=f"{t[:4]}{s}", epochs=epochs, mse=mse[-1] * (1 + 0.01 * s),
                     settings=SETTINGS, **fields) for t, mse in techniques.items() for s in SEEDS]  # fmt: skip
    write_results(folder, rows)
    write_cost(folder, {"machine": MACHINE, "entries": entries})
    return folder


def cost_rows(stats, technique: str) -> dict[str, dict]:
    mine = stats[(stats["technique"] == technique) & stats["metric"].isin([COST, FIT, ONE_OFF])]
    return {r["metric"]: r for r in mine.to_dict("records")}


@pytest.fixture(scope="module")
def costed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    entries = [step("digits", "baseline", 1.01, 0.97, 1.05), step("digits", "dear", 3.0, 2.5, 3.6),
               step("digits", "near", 0.95, 0.88, 1.02), step("digits", "cheap", 0.60, 0.55, 0.66, 4),
               {"dataset": "digits", "technique": "dear", "kind": "one-off", "seconds": 42.0, "images": 512},
               {"dataset": "digits", "technique": "pca", "kind": "fit", "seconds": 7.5, "images": 512}]  # fmt: skip
    curves_ = {t: [0.04, 0.02] for t in ("baseline", "dear", "near", "cheap", "pca")}
    return results(tmp_path_factory.mktemp("costed"), "digits", curves_, entries)


def test_the_frame_holds_each_ratio_with_its_ci_and_fits_and_one_offs_as_seconds(costed: Path) -> None:
    stats = analyse([costed])[3]
    dear = cost_rows(stats, "dear")
    assert set(dear) == {COST, ONE_OFF}
    assert (dear[COST]["mean"], dear[COST]["ci_low"], dear[COST]["ci_high"], dear[COST]["n"]) == (3.0, 2.5, 3.6, 9)
    assert dear[COST]["machine"] == "Test CPU (avx2), cpu, 1 thread, torch 2.x"
    assert dear[COST]["seconds"] == pytest.approx(3.0 * BASE_STEP * 10)  # ratio × baseline step × steps per epoch
    assert cost_rows(stats, "baseline")[COST]["seconds"] == pytest.approx(BASE_STEP * 10)  # the unit: ratio 1
    assert cost_rows(stats, "cheap")[COST]["n"] == 4
    fit, one_off = cost_rows(stats, "pca"), dear[ONE_OFF]
    assert set(fit) == {FIT} and fit[FIT]["mean"] == fit[FIT]["seconds"] == 7.5 and one_off["mean"] == 42.0
    for r in (fit[FIT], one_off):  # seconds once: no ratio, no interval, no verdict
        assert math.isnan(r["ci_low"]) and math.isnan(r["diff"]) and not r["significant"] and r["standing"] == ""


def test_cheaper_or_dearer_and_bold_only_where_the_ci_excludes_1(costed: Path) -> None:
    stats = analyse([costed])[3]
    verdicts = {t: (cost_rows(stats, t)[COST]["significant"], cost_rows(stats, t)[COST]["standing"])
                for t in ("baseline", "dear", "near", "cheap")}  # fmt: skip
    assert verdicts == {"baseline": (False, ""), "dear": (True, "dearer"), "near": (False, ""),
                        "cheap": (True, "cheaper")}  # fmt: skip
    table = results_table(stats).set_index("Technique")["Cost vs baseline (controlled)"]
    assert [t for t in table.index if "**" in table[t]] == ["dear", "cheap"]
    assert "0.950×" in table["near"] and "≈" in table["near"]
    assert "×" not in table["pca"] and "7.5 s" in table["pca"]
    assert "42 s" in table["dear"].split(";")[1] and "×" not in table["dear"].split(";")[1]


def test_a_folder_without_a_cost_record_adds_no_cost_rows(tmp_path: Path) -> None:
    folder = results(tmp_path, "digits", {"baseline": [0.02], "other": [0.03]}, [])
    (folder / "cost.json").unlink()
    stats = analyse([folder])[3]
    assert not stats["metric"].isin([COST, FIT, ONE_OFF]).any()
    assert "Cost vs baseline (controlled)" not in results_table(stats)


def write_history(folder: Path, dataset: str, technique: str, mse: list[float], seconds: float) -> float:
    """Every seed's history: ``mse`` per epoch, ``seconds`` per epoch on the sweep's own clock; the row's time."""
    for seed in SEEDS:
        cell = cell_folder(folder, dataset, technique, seed, f"{technique[:4]}{seed}")
        history = [{"epoch": e, "test_mse": m, "seconds": seconds} for e, m in enumerate(mse, 1)]
        (cell / "history.json").write_text(json.dumps(history))
    return seconds * len(mse)


def test_the_equal_time_read_off_ranks_on_baseline_equivalent_time_not_the_sweeps_clock(tmp_path: Path) -> None:
    """'slow' learns most per epoch and ran alone on a quiet machine (50 s an epoch on the sweep's clock, the others
    100 s), but its step costs 4× the baseline's: at the baseline's whole run it has done one epoch's worth."""
    mse = {"baseline": [0.04, 0.03, 0.02, 0.01], "fast": [0.05, 0.04, 0.03, 0.015], "slow": [0.02, 0.01, 0.005, 0.002]}
    clock = {"baseline": 100.0, "fast": 100.0, "slow": 50.0}
    entries = [step("digits", "baseline", 1.0, 0.95, 1.05), step("digits", "fast", 0.5, 0.45, 0.55),
               step("digits", "slow", 4.0, 3.5, 4.5)]  # fmt: skip
    rows = [make_row("exp", "digits", t, s, config_hash=f"{t[:4]}{s}", epochs=4, mse=m[-1], settings=SETTINGS,
                     train_seconds=clock[t] * 4) for t, m in mse.items() for s in SEEDS]  # fmt: skip
    write_results(tmp_path, rows)
    write_cost(tmp_path, {"machine": MACHINE, "entries": entries})
    for technique, values in mse.items():
        write_history(tmp_path, "digits", technique, values, clock[technique])
    _, ok, _, stats = analyse([tmp_path])
    equal = equivalent_curves(curves(ok), stats)
    fair, raw = read_off(equal, stats), read_off(equal, stats, "seconds")
    assert list(fair["technique"]) == ["baseline", "fast", "slow"]
    assert list(raw["technique"]) == ["slow", "baseline", "fast"]
    at = fair.set_index("technique")
    assert at.loc["slow", "epoch"] == 1 and at.loc["slow", "test_mse"] == pytest.approx(0.02)
    assert at.loc["fast", "epoch"] == 4 and at.loc["fast", "at"] == pytest.approx(2 * BASE_STEP * 10)
    assert fair["horizon"].iloc[0] == pytest.approx(4 * BASE_STEP * 10) and list(fair["rank"]) == [1, 2, 3]
    assert set(fair["time"]) == {"baseline-equivalent time"} and set(raw["time"]) == {"the sweep's own clock"}
    out = tmp_path / "report"
    write_report([tmp_path], out, "test")
    assert (out / "figures" / "cost_exp_digits.png").is_file()
    assert read_csv_ranks(out) == ["baseline", "fast", "slow"]
    page = (out / "exp_digits.md").read_text()
    assert "baseline-equivalent time" in page and page.index("1. baseline") < page.index("3. slow")


def read_csv_ranks(out: Path) -> list[str]:
    lines = (out / "tables" / "equal_time.csv").read_text().splitlines()
    header = lines[0].split(",")
    return [line.split(",")[header.index("technique")] for line in lines[1:]]


def test_the_study_comparison_sets_its_time_ratios_beside_our_controlled_ones(tmp_path: Path) -> None:
    """The study: pixel shuffle 27:40 over the baseline's 24:43 (1.12), feature loss 26:52 (1.09)."""
    entries = [step("mnist", "baseline", 1.0, 0.95, 1.05), step("mnist", "pixel_shuffle", 1.10, 1.05, 1.16),
               step("mnist", "feature_loss", 4.0, 3.5, 4.6)]  # fmt: skip
    mse = {"baseline": [0.0009], "pixel_shuffle": [0.0012], "feature_loss": [0.0012]}
    folder = results(tmp_path, "mnist", mse, entries, n_train=60_000, n_test=10_000, accuracy_clean=0.99)
    frame, _, _, stats = analyse([folder])
    cost = comparison("mnist", stats, frame).cost.set_index("technique")
    assert cost.loc["pixel_shuffle", "study"] == pytest.approx(1660 / 1483) and cost.loc["pixel_shuffle", "inside"]
    assert cost.loc["feature_loss", "study"] == pytest.approx(1612 / 1483) and not cost.loc["feature_loss", "inside"]
    assert cost.loc["feature_loss", "ours"] == 4.0 and cost.loc["feature_loss", "ci_high"] == 4.6
    assert math.isnan(cost.loc["resnet_scratch", "ours"]) and cost.loc["resnet_scratch", "inside"] is None
    assert cost.loc["progressive_resizing", "study"] == pytest.approx(1484 / 1483)
    assert cost["pace"].iloc[0] == pytest.approx(15 * 60_000 / 1483)


def test_a_folder_named_with_a_trailing_slash_keeps_its_cost_record(costed: Path) -> None:
    stats = analyse([f"{costed}/"])[3]
    assert cost_rows(stats, "dear")[COST]["mean"] == 3.0
