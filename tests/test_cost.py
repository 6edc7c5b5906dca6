"""The controlled cost measurement: the one interleaved timer (order, warm-up, stopping, statistics on fake
timings), the record's conditions and machine, kept or measured again, written by ``aebench run`` and never at
the rows' expense. Nothing here asserts how fast anything is."""

from __future__ import annotations

import itertools
import json
import logging
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY

from aebench import cli
from aebench.bench.busy import markdown_cost
from aebench.data import DatasetCache
from aebench.execution import cost
from aebench.execution.timer import Comparison, TimerSettings, compare
from aebench.experiment import load_experiment, parse_experiment
from aebench.results.cost import COST_FILE, load_cost, read_cost
from aebench.results.store import read_rows

CPU = torch.device("cpu")
SPEC = {
    **TINY,
    "techniques": ["baseline", "pixel_shuffle", "pca", "feature_loss"],
    "overrides": {"feature_loss": {"feature_net": "trained", "trained_epochs": 1, "term_scale": "auto"}},
}


class FakeClock:
    """Steps that log their calls and advance a fake clock by their own per-step seconds; the first call of each
    step (the warm-up) costs ``warmup`` seconds more. Its ``timer`` replaces the real round timer."""

    def __init__(self, seconds: dict[str, Iterator[float]], warmup: float = 100.0) -> None:
        self.now, self.calls, self.seconds, self.warmup = 0.0, [], seconds, warmup

    def step(self, name: str) -> Callable[[], None]:
        def call() -> None:
            self.now += next(self.seconds[name]) + (self.warmup if name not in self.calls else 0.0)
            self.calls.append(name)

        return call

    def timer(self, step: Callable[[], None], n: int) -> float:
        start = self.now
        for _ in range(n):
            step()
        return self.now - start


def timed_pair(seconds: dict[str, Iterator[float]], settings: TimerSettings) -> tuple[Comparison, FakeClock]:
    clock = FakeClock(seconds)
    return compare(clock.step("a"), clock.step("b"), settings, CPU, clock.timer), clock


def test_the_rounds_interleave_a_and_b_and_the_warm_up_is_not_timed() -> None:
    settings = TimerSettings(min_pairs=3, warmup=2, steps=4, max_seconds=1e9)
    result, clock = timed_pair({"a": itertools.repeat(1.0), "b": itertools.repeat(2.0)}, settings)
    assert clock.calls[:4] == ["a", "b", "a", "b"]  # the warm-up: one step of each, twice
    rounds = [name for name, _ in itertools.groupby(clock.calls[4:])]
    assert rounds == ["a", "b"] * result.pairs and len(clock.calls) == 4 + 8 * result.pairs
    assert result.a == [1.0] * 3 and result.b == [2.0] * 3  # the 100 s warm-up is in no timed round
    assert result.ratio() == (2.0, 2.0, 2.0) and result.stopped == "ci"


def test_steps_per_round_follow_the_warm_up_when_not_fixed() -> None:
    settings = TimerSettings(min_pairs=2, warmup=1, round_seconds=10.0, max_seconds=1e9)
    clock = FakeClock({"a": itertools.repeat(1.0), "b": itertools.repeat(2.0)}, warmup=0.0)
    assert compare(clock.step("a"), clock.step("b"), settings, CPU, clock.timer).steps == 5  # 10 s / 2 s a step


def test_it_stops_at_the_first_pair_whose_ci_is_within_the_target() -> None:
    noise = [1.3, 0.8, 1.1, 0.95, 1.02, 0.99, 1.01]
    settings = TimerSettings(target=0.05, min_pairs=3, warmup=1, steps=1, max_seconds=1e9)
    b = itertools.chain([1.0], noise, itertools.repeat(1.0))  # the warm-up, then per-pair step times
    result, _ = timed_pair({"a": itertools.repeat(1.0), "b": b}, settings)
    times = [*noise, *[1.0] * 100]
    first = next(n for n in range(3, 100) if Comparison([1.0] * n, times[:n], 1, "ci").within(0.05))
    assert result.stopped == "ci" and result.pairs == first > 3


def test_it_stops_at_the_cap_when_the_ci_stays_wide() -> None:
    settings = TimerSettings(target=0.05, min_pairs=2, warmup=1, steps=1, max_seconds=20.0)
    clock = FakeClock({"a": itertools.repeat(1.0), "b": itertools.cycle([1.0, 3.0])}, warmup=0.0)
    result = compare(clock.step("a"), clock.step("b"), settings, CPU, clock.timer)
    assert result.stopped == "cap" and not result.within(0.05)
    assert clock.now >= 20.0 and clock.now - 4.0 < 20.0  # the pair that crossed the cap is the last (<= 4 s a pair)


def test_the_ratio_is_the_geometric_mean_of_the_pairs_with_a_t_interval() -> None:
    logs = [0.1, -0.1, 0.3, -0.3]
    result = Comparison([2.0] * 4, [2.0 * math.exp(x) for x in logs], 1, "ci")
    ratio, low, high = result.ratio()
    half = 3.182446305284263 * math.sqrt(sum(x * x for x in logs) / 3) / 2  # t(0.975, 3) * sd / sqrt(4)
    assert ratio == pytest.approx(1.0) and (low, high) == pytest.approx((math.exp(-half), math.exp(half)))
    assert Comparison([1.0], [2.0], 1, "cap").ratio()[1:] == (0.0, math.inf)  # one pair: no interval


def test_a_phased_step_is_weighted_by_its_phases_epochs(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = {**TINY, "techniques": ["progressive_resizing"], "train": {**TINY["train"], "epochs": 3}}
    raw["overrides"] = {"progressive_resizing": {"sizes": [4], "fractions": [1 / 3]}}
    cell = parse_experiment(raw, "t").cell("digits", "progressive_resizing", 0)
    run = cost.timing_run(cell, DatasetCache(Path("/nonexistent")), CPU, 64)
    caps, sizes = [], []
    answers = iter([Comparison([1.0, 1.0], [0.5, 0.5], 3, "ci"), Comparison([1.0, 1.0], [1.0, 1.0], 3, "cap")])

    def fake(a: Any, b: Callable[[], object], settings: TimerSettings, device: torch.device) -> Comparison:
        b()  # the phase's real step, at the phase's image size
        caps.append(settings.max_seconds)
        return next(answers)

    monkeypatch.setattr(cost, "compare", fake)

    class Step:  # the run's training step, recording the side of the images it gets
        precision = "fp32"

        def __call__(self, optimizer: Any, inputs: torch.Tensor, target: torch.Tensor) -> None:
            sizes.append(inputs.shape[-1])

    run.step = Step()
    entry = cost.step_entry(run, lambda: None, TimerSettings(max_seconds=30.0), CPU)
    assert [p["epochs"] for p in entry["phases"]] == [1, 2] and sizes == [4, 8]
    assert caps == pytest.approx([10.0, 20.0])  # the technique's cap, shared by epochs
    assert entry["ratio"] == pytest.approx(0.5 / 3 + 2 / 3) and entry["pairs"] == 4 and entry["stopped"] == "cap"


def test_aebench_run_records_every_techniques_cost_with_its_conditions(experiment_file, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["-q", "run", str(experiment_file(SPEC)), "--out", str(out), "--device", "cpu"]) == 0
    record = read_cost(out)
    assert record["machine"] == cost.machine(CPU, 1) and record["conditions"]["threads"] == 1
    assert set(record["machine"]) == {"device", "name", "flags", "torch", "threads"}
    assert record["conditions"]["step_mode"] == "eager" and record["conditions"]["timer"]["max_seconds"] == 0.05
    kinds = {(e["technique"], e["kind"]) for e in record["entries"]}
    assert kinds == {("baseline", "step"), ("pixel_shuffle", "step"), ("pca", "fit"), ("feature_loss", "one-off"),
                     ("feature_loss", "step")}  # fmt: skip
    assert record["skipped"] == []
    steps = [e for e in record["entries"] if e["kind"] == "step"]
    assert all(e["ci_low"] <= e["ratio"] <= e["ci_high"] and e["pairs"] >= 2 and e["precision"] for e in steps)
    frame = load_cost([out])
    assert list(frame.columns[:8]) == ["folder", "dataset", "technique", "kind", "ratio", "ci_low", "ci_high", "n"]
    assert (
        set(frame["kind"]) == {"step", "fit", "one-off"}
        and frame["machine"].str.endswith(f"1 thread, torch {torch.__version__}").all()
    )
    fit = frame[frame["kind"] == "fit"].iloc[0]
    assert fit["seconds"] > 0 and fit["images"] == 64 and math.isnan(fit["ratio"])


def test_the_record_is_kept_on_this_machine_and_measured_again_on_another(
    experiment_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_experiment(experiment_file(SPEC))
    measured: list[str] = []
    here = {"device": "cpu", "name": "Xeon", "flags": ["amx_bf16"], "torch": "2.5", "threads": 2}
    monkeypatch.setattr(cost, "machine", lambda device, threads: here)
    monkeypatch.setattr(cost, "measure_costs", lambda *a: measured.append(here["name"]) or {
        "machine": dict(here), "recipes": cost.recipes(config), "entries": [], "skipped": []})  # fmt: skip

    def record() -> None:
        cost.record_cost(config, tmp_path, Path("/nonexistent"), CPU, cost.DEFAULT_COST)

    record()
    record()  # the same machine, the same recipes: kept
    assert measured == ["Xeon"] and read_cost(tmp_path)["machine"]["name"] == "Xeon"
    here.update(name="AMD EPYC", flags=["avx2"])  # the folder continued on another machine
    record()
    assert measured == ["Xeon", "AMD EPYC"] and read_cost(tmp_path)["machine"]["name"] == "AMD EPYC"
    here.update(threads=1)  # another thread count is another measurement
    record()
    config = load_experiment(experiment_file(SPEC, train={**TINY["train"], "batch_size": 16}))  # another recipe
    record()
    assert len(measured) == 4


def test_a_failed_cost_measurement_keeps_every_row_and_the_summary(
    experiment_file, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("out of memory in the cost measurement")

    monkeypatch.setattr(cost, "measure_costs", broken)
    out = tmp_path / "out"
    spec = {**TINY, "techniques": ["baseline", "pca"]}
    with caplog.at_level(logging.WARNING):
        assert cli.main(["run", str(experiment_file(spec)), "--out", str(out), "--device", "cpu"]) == 0
    assert [r["status"] for r in read_rows(out)] == ["ok", "ok"] and (out / "summary.md").is_file()
    assert not (out / COST_FILE).exists() and "cost measurement failed (RuntimeError: out of memory" in caplog.text
    assert cli.main(["run", str(experiment_file(spec)), "--out", str(tmp_path / "off"), "--no-cost"]) == 0
    assert not (tmp_path / "off" / COST_FILE).exists()


def test_bench_cost_measures_on_demand_into_a_results_folder_and_quiet_beside_busy(
    experiment_file, tmp_path: Path
) -> None:
    path, out = experiment_file({**TINY, "techniques": ["baseline", "pca"]}), tmp_path / "folder"
    args = ["bench", "--cost", "--experiment", str(path), "--device", "cpu", "--seconds", "0.05", "--repeats", "2"]
    assert cli.main([*args, "--out", str(out), "--json", str(tmp_path / "cost.json")]) == 0
    record = read_cost(out)
    assert record["conditions"]["timer"]["max_seconds"] == 0.05 and json.loads((tmp_path / "cost.json").read_text())
    assert {(e["technique"], e["kind"]) for e in record["entries"]} == {("baseline", "step"), ("pca", "fit")}
    assert cli.main(["bench", "--cost", "--sweep", "--experiment", str(path)]) == 2
    busy = tmp_path / "busy.json"
    assert cli.main([*args, "--busy-core", "--technique", "baseline", "--json", str(busy)]) == 0
    records = json.loads(busy.read_text())["records"]
    assert list(records) == ["quiet", "busy"] and all(r["entries"][0]["kind"] == "step" for r in records.values())


def test_the_quiet_and_busy_table_sets_each_ratio_beside_the_other() -> None:
    def record(ratio: float) -> dict[str, Any]:
        step = {"dataset": "mnist", "technique": "pixel_shuffle", "kind": "step", "ratio": ratio, "ci_low": ratio - 0.1,
                "ci_high": ratio + 0.1, "pairs": 12}  # fmt: skip
        fit = {"dataset": "mnist", "technique": "pca", "kind": "fit", "seconds": 3.0, "images": 4096}
        machine = {"device": "cpu", "name": "AMD EPYC", "flags": ["avx2"], "torch": "2.5", "threads": 2}
        return {"machine": machine, "entries": [step, fit], "skipped": []}

    text = markdown_cost({"records": {"quiet": record(1.1), "busy": record(1.21)}, "load_average": [2.0, 2.0, 2.0]})
    assert (
        "| mnist | pixel_shuffle | step | 1.100 [1.000, 1.200], 12 pairs | 1.210 [1.110, 1.310], 12 pairs | 1.100 |"
        in text
    )
    assert "| mnist | pca | fit | 3.00 s on 4,096 images | 3.00 s on 4,096 images | - |" in text
    assert "busy: AMD EPYC (avx2), cpu, 2 threads, torch 2.5" in text


def test_the_measurement_sets_its_threads_and_puts_them_back() -> None:
    before = torch.get_num_threads()
    with cost.torch_threads(2) as threads:
        assert threads == torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
    with cost.torch_threads(None) as threads:
        assert threads == before


@pytest.mark.parametrize("extra", [["--dry-run"], []])
def test_a_cost_cap_of_0_is_refused_before_any_training(
    experiment_file, tmp_path: Path, extra: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["run", str(experiment_file()), "--out", str(tmp_path / "out"), "--cost-seconds", "0", *extra]
    assert cli.main(args) == 2
    assert "--cost-seconds must be above 0" in capsys.readouterr().err and not (tmp_path / "out").exists()
