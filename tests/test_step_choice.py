"""``train.compile: auto``: no probe on a short cell, a probe that leaves an eager cell exactly as ``compile: false``,
the rest of the cell compiled where the probe finds it faster, and the choice kept out of the config hash."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from helpers import TINY
from torch import nn

from aebench.config import ConfigError
from aebench.data import DatasetCache
from aebench.experiment import parse_experiment
from aebench.techniques import build_recipe
from aebench.training import step_choice
from aebench.training.loop import Splits, TrainOutcome, train
from aebench.training.recipe import BuildContext
from aebench.training.step_choice import Probe, choose

TOLERANCE = {  # weights after a few steps; bf16 and fp16 keep 8 and 11 bits of mantissa
    "fp32": {"rtol": 1e-4, "atol": 1e-4},
    "bf16": {"rtol": 1.6e-2, "atol": 2e-3},
    "fp16": {"rtol": 2e-3, "atol": 1e-3},
}


class Through(nn.Module):
    """A stand-in for a compiled module: the same model, called through a wrapper that counts its calls."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.model(x)


def trained(compile_: Any, epochs: int = 3) -> tuple[TrainOutcome, list[torch.Tensor]]:
    """A tiny digits baseline trained with this ``train.compile``; its outcome and final weights."""
    raw = {**TINY, "train": {**TINY["train"], "epochs": epochs, "batch_size": 16, "compile": compile_}}
    cell = parse_experiment({**raw, "data": {"limit_train": 64, "limit_test": 16}}, "t").cells()[0]
    data = DatasetCache(Path("/nonexistent")).prepared("digits", cell.data)
    ctx = BuildContext.for_cell(cell, data.x_train)
    recipe = build_recipe("baseline", ctx, seed=0)
    outcome = train(recipe, Splits(data.x_train, data.x_test), cell, ctx.normalizer())
    return outcome, [t.detach().clone() for t in recipe.model.state_dict().values()]


def same(a: list[torch.Tensor], b: list[torch.Tensor]) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a, b, strict=True))


def test_auto_on_a_short_cell_probes_nothing_and_trains_as_compile_false() -> None:
    outcome, weights = trained("auto")
    assert outcome.step_mode == "eager" and outcome.probe_seconds is None and outcome.compile_seconds is None
    assert same(weights, trained(False)[1])


def test_a_probe_that_finds_no_gain_leaves_the_cell_exactly_as_compile_false(monkeypatch: pytest.MonkeyPatch) -> None:
    wrappers: list[Through] = []
    monkeypatch.setattr(step_choice, "PROBE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(step_choice, "MIN_SPEEDUP", float("inf"))  # never fast enough
    monkeypatch.setattr(step_choice, "compile_model", lambda m: wrappers.append(Through(m)) or wrappers[-1])
    outcome, weights = trained("auto")
    assert len(wrappers) == 1 and wrappers[0].calls > 0  # the probe trained steps through it
    assert outcome.step_mode == "eager" and outcome.probe_seconds > 0 and outcome.compile_speedup > 0
    assert same(weights, trained(False)[1])  # weights, buffers and random streams restored


def test_a_faster_compiled_step_trains_the_rest_of_the_cell(monkeypatch: pytest.MonkeyPatch) -> None:
    wrappers: list[Through] = []

    def faster(model: nn.Module, *args: Any) -> tuple[Probe, nn.Module]:
        wrappers.append(Through(model))
        return Probe(eager=0.2, compiled=0.1, compile_seconds=0.5, seconds=1.0), wrappers[-1]

    monkeypatch.setattr(step_choice, "PROBE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(step_choice, "probe_compile", faster)
    outcome, _ = trained("auto", epochs=3)
    assert outcome.step_mode == "compiled" and outcome.compile_speedup == 2.0 and outcome.compile_seconds == 0.5
    assert wrappers[0].calls == 2 * 4  # epochs 2 and 3, 64 images in batches of 16


def test_choose_skips_short_cells_survives_a_failing_compile_and_weighs_recompiles(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, device = nn.Linear(2, 2), torch.device("cpu")
    short = choose(model, lambda f, n: None, [4], device, remaining=10.0, recompiles=0)
    assert short.forward is None and short.probe is None and "too little" in short.reason

    def broken(m: nn.Module) -> nn.Module:
        raise RuntimeError("no C++ compiler")

    monkeypatch.setattr(step_choice, "compile_model", broken)
    failed = choose(model, lambda f, n: None, [4], device, remaining=1e6, recompiles=0)
    assert failed.forward is None and "compiling failed" in failed.reason
    probe = Probe(eager=1.5, compiled=1.0, compile_seconds=100.0, seconds=110.0)
    monkeypatch.setattr(step_choice, "probe_compile", lambda *a: (probe, model))
    assert choose(model, lambda f, n: None, [4], device, remaining=3000.0, recompiles=0).forward is model
    # 3,000 s at 1.5x saves 1,000 s: less than twenty more 100 s compiles in later phases
    assert choose(model, lambda f, n: None, [4], device, remaining=3000.0, recompiles=20).forward is None


def test_compile_is_an_execution_choice_outside_the_config_hash() -> None:
    hashes = {
        parse_experiment({**TINY, "train": {**TINY["train"], "compile": value}}, "t").cells()[0].config_hash
        for value in (False, True, "auto")
    }
    assert len(hashes) == 1 and parse_experiment(TINY, "t").cells()[0].train.compile == "auto"
    with pytest.raises(ConfigError, match="'train.compile' must be"):
        parse_experiment({**TINY, "train": {"compile": "fast"}}, "t")


@pytest.mark.slow  # torch.compile of a small model: minutes on 2 busy cores
def test_auto_compiling_the_rest_of_a_cell_matches_eager_training(monkeypatch: pytest.MonkeyPatch) -> None:
    real = step_choice.probe_compile

    def adopted(*args: Any) -> tuple[Probe, nn.Module]:  # the real compile and probe, its verdict forced
        probe, compiled = real(*args)
        return Probe(probe.eager, probe.eager / 2, probe.compile_seconds, probe.seconds), compiled

    monkeypatch.setattr(step_choice, "PROBE_AFTER_SECONDS", 0.0)
    monkeypatch.setattr(step_choice, "probe_compile", adopted)
    outcome, weights = trained("auto", epochs=2)
    assert outcome.step_mode == "compiled" and outcome.compile_seconds > 0
    tolerance = TOLERANCE[outcome.precision]  # fused kernels round differently: equal within the precision
    for compiled, eager in zip(weights, trained(False, epochs=2)[1], strict=True):
        torch.testing.assert_close(compiled, eager, **tolerance)
