"""The results store: schema, atomic appends, crash-tolerant reads, resume, and failures that do not stop a run."""

from __future__ import annotations

import json
import logging
import multiprocessing
import statistics as statistics_module
from pathlib import Path
from typing import Any

import pytest
from helpers import cell_dir

from aebench.errors import SkipCell
from aebench.execution.runner import run_experiment
from aebench.experiment import load_experiment
from aebench.reporting.flags import sanity_flags
from aebench.reporting.rows import load
from aebench.reporting.stats import statistics
from aebench.results.schema import RESULTS_FILE, ROW_FIELDS
from aebench.results.store import append_row, finished_keys, load_results, read_rows
from aebench.results.summary import finished
from aebench.techniques import TECHNIQUES, TechniqueInfo


def row(**values: Any) -> dict[str, Any]:
    """A complete results row (every field None) with ``values`` filled in."""
    base = dict.fromkeys(ROW_FIELDS)
    base.update(experiment="e", dataset="digits", technique="baseline", seed=0, status="ok", reason="", config_hash="h")
    base.update(values)
    return base


def test_append_rejects_incomplete_rows(tmp_path: Path) -> None:
    incomplete = row()
    del incomplete["psnr"]
    with pytest.raises(ValueError, match="psnr"):
        append_row(tmp_path, incomplete)
    assert not (tmp_path / RESULTS_FILE).exists()


def test_rows_append_one_line_each_and_read_back(tmp_path: Path) -> None:
    rows = [row(seed=s, mae=0.1 * s) for s in range(3)]
    for r in rows:
        append_row(tmp_path, r)
    lines = (tmp_path / RESULTS_FILE).read_text().splitlines()
    assert len(lines) == 3 and [json.loads(line) for line in lines] == rows
    assert read_rows(tmp_path) == rows


def append_many(folder: Path, worker: int) -> None:
    for seed in range(20):
        append_row(folder, row(technique=f"worker{worker}", seed=seed, reason="x" * 5000))


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=append_many, args=(tmp_path, w)) for w in range(3)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert [w.exitcode for w in workers] == [0, 0, 0]
    lines = (tmp_path / RESULTS_FILE).read_text().splitlines()
    assert sorted((r["technique"], r["seed"]) for r in map(json.loads, lines)) == [
        (f"worker{w}", s) for w in range(3) for s in range(20)
    ]


def test_truncated_last_line_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    append_row(tmp_path, row(seed=0))
    append_row(tmp_path, row(seed=1))
    path = tmp_path / RESULTS_FILE
    path.write_bytes(path.read_bytes()[:-25])  # a process killed mid-write
    with caplog.at_level(logging.WARNING):
        rows = read_rows(tmp_path)
    assert [r["seed"] for r in rows] == [0]
    assert f"{path}:2" in caplog.text
    append_row(tmp_path, row(seed=2))  # a row appended after the damage starts on its own line
    assert [r["seed"] for r in read_rows(tmp_path)] == [0, 2]


def test_failed_cells_are_not_finished() -> None:
    rows = [row(seed=0), row(seed=1, status="failed"), row(seed=2, status="skipped")]
    assert {key[3] for key in finished_keys(rows)} == {0, 2}


def test_load_results_keeps_the_latest_row_per_cell(tmp_path: Path) -> None:
    append_row(tmp_path, row(status="failed", reason="boom"))
    append_row(tmp_path, row(mae=0.5))
    frame = load_results([tmp_path])
    assert len(frame) == 1 and frame.loc[0, "status"] == "ok" and list(frame.columns[: len(ROW_FIELDS)]) == ROW_FIELDS


def test_the_statistics_frame_takes_mean_and_sd_over_finished_seeds(tmp_path: Path) -> None:
    for seed, mae in enumerate([0.1, 0.3]):
        append_row(
            tmp_path,
            row(
                seed=seed,
                mae=mae,
                mse=mae**2,
                psnr=20.0,
                ssim=0.5,
                accuracy=0.9,
                accuracy_clean=0.95,
                train_seconds=1.0,
                images_per_second=100.0,
            ),
        )
    append_row(tmp_path, row(seed=9, status="failed"))  # failures never enter the means
    ok = finished(load([tmp_path]))
    stats = statistics(ok, sanity_flags(ok)).set_index("metric")
    assert stats.loc["mae", "n"] == 2 and stats.loc["mae", "mean"] == pytest.approx(0.2)
    assert stats.loc["mae", "sd"] == pytest.approx(statistics_module.stdev([0.1, 0.3]))  # sample sd over seeds
    assert stats.loc["psnr", "sd"] == 0.0


# --------------------------------------------------------------------------- through the runner


def build_failing(ctx: Any) -> Any:
    raise RuntimeError("exploded on purpose\nsecond line")


def build_skipping(ctx: Any) -> Any:
    raise SkipCell("weights unavailable offline; place them in the cache")


@pytest.fixture
def throwaway_techniques(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two techniques that fail and skip, registered for one test (monkeypatch restores the registry)."""
    for name, fn in (("boom", build_failing), ("skipper", build_skipping)):
        monkeypatch.setitem(TECHNIQUES, name, TechniqueInfo(name, "test only", fn, TECHNIQUES["pca"].params))


def run(path: Path, out: Path, sets: list[str] | None = None) -> list[dict[str, Any]]:
    return run_experiment(load_experiment(path, sets), out, Path("/nonexistent"), "cpu")


def test_runner_records_failures_and_skips_and_resumes(experiment_file, tmp_path: Path, throwaway_techniques) -> None:
    path = experiment_file(techniques=["boom", "skipper", "pca"])
    out = tmp_path / "out"
    written = run(path, out)
    by_technique = {r["technique"]: r for r in written}
    assert by_technique["boom"]["status"] == "failed"
    assert by_technique["boom"]["reason"] == "RuntimeError: exploded on purpose"
    assert "exploded on purpose" in (cell_dir(out, "boom") / "error.log").read_text()
    assert by_technique["skipper"]["status"] == "skipped" and "offline" in by_technique["skipper"]["reason"]
    assert by_technique["pca"]["status"] == "ok"  # the failure did not stop the run
    stored = read_rows(out)
    assert stored == json.loads(json.dumps(written))
    for r in stored:
        assert set(ROW_FIELDS) <= set(r) and r["status"] in ("ok", "failed", "skipped")
    ok = by_technique["pca"]
    assert all(isinstance(ok[k], float) for k in ("mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean"))
    assert 0 <= ok["mae"] <= 1 and 0 <= ok["accuracy"] <= 1 and ok["params"] >= 0 and ok["device"] == "cpu"

    again = run(path, out)  # finished cells are kept; only the failed one is retried
    assert [r["technique"] for r in again] == ["boom"]
    changed = run(path, out, ["overrides.pca.model.latent=4"])  # a changed config reruns that cell
    assert sorted(r["technique"] for r in changed) == ["boom", "pca"]
    assert len(read_rows(out)) == len(written) + 3


def test_rerun_writes_nothing_when_all_cells_are_done(experiment_file, tmp_path: Path) -> None:
    path = experiment_file(techniques=["pca"], seeds=[0, 1])
    out = tmp_path / "out"
    assert len(run(path, out)) == 2
    before = (out / RESULTS_FILE).read_bytes()
    assert run(path, out) == []
    assert (out / RESULTS_FILE).read_bytes() == before


def test_the_dry_run_plans_what_the_run_then_does(
    experiment_file, tmp_path: Path, throwaway_techniques, capsys: pytest.CaptureFixture[str]
) -> None:
    from aebench.cli import main

    path, out = experiment_file(techniques=["boom", "skipper", "pca"]), tmp_path / "out"
    run(path, out)
    capsys.readouterr()
    assert main(["-q", "run", str(path), "--dry-run", "--out", str(out)]) == 0
    cells = [line.split() for line in capsys.readouterr().out.splitlines()[1:] if not line.startswith("  data")]
    states = {cell[2]: cell[0] for cell in cells}
    assert states == {"boom": "todo", "skipper": "done", "pca": "done"}  # failed is retried; ok, skipped are kept
    assert [r["technique"] for r in run(path, out)] == [t for t, state in states.items() if state == "todo"]


def test_a_folder_of_another_experiment_is_refused_by_the_run_and_the_dry_run(
    experiment_file, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from aebench.cli import main

    out = tmp_path / "out"
    out.mkdir()
    append_row(out, row(experiment="other", config_hash="ab12"))
    path = experiment_file(techniques=["pca"])
    for extra in (["--dry-run"], []):
        assert main(["-q", "run", str(path), "--out", str(out), *extra]) == 2
        assert "holds results of experiment 'other'" in capsys.readouterr().err


def test_preflight_builds_each_model_from_the_context_the_run_saves(
    experiment_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One construction path: preflight's PCA has the run's normaliser statistics, not defaults."""
    import torch
    from helpers import TINY

    from aebench.config import to_plain
    from aebench.execution import preflight as preflight_module

    contexts = []
    real = preflight_module.build_recipe
    monkeypatch.setattr(
        preflight_module, "build_recipe", lambda t, ctx, seed=None: contexts.append(ctx) or real(t, ctx, seed)
    )
    path = experiment_file(techniques=["pca"], data={**TINY["data"], "normalize": "dataset"})
    out = tmp_path / "out"
    run(path, out)
    saved = torch.load(cell_dir(out, "pca") / "checkpoint.pt", weights_only=True)["context"]
    (checked,) = contexts
    assert checked.input_mean != (0.0,) and {**to_plain(checked), "load_weights": True} == saved
