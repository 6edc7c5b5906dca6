"""The baseline model's shapes, the shared train loop, and run-to-run determinism on CPU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from helpers import TINY, built, cell_dir

from aebench.data import DatasetCache
from aebench.data.pixels import Normalizer
from aebench.execution.runner import run_experiment
from aebench.experiment import load_experiment, parse_experiment
from aebench.training.loop import Splits, train
from aebench.training.recipe import Phase, Recipe


def baseline_recipe(channels: int, size: int) -> Recipe:
    return built(parse_experiment(TINY, "test").cells()[0], (channels, size))


@pytest.mark.parametrize("size", [8, 28, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_baseline_reconstructs_the_input_shape(channels: int, size: int) -> None:
    model = baseline_recipe(channels, size).model.eval()
    x = torch.rand(2, channels, size, size)
    assert model(x).shape == x.shape
    assert model.encode(x).shape == (2, 8)


def digits_setup(limit: int = 48) -> tuple[object, Splits, Normalizer]:
    cell = parse_experiment(
        {**TINY, "data": {"limit_train": limit, "limit_test": 16}, "train": {**TINY["train"], "batch_size": 16}}, "test"
    ).cells()[0]
    data = DatasetCache(Path("/nonexistent")).prepared("digits", cell.data)
    return cell, Splits(data.x_train, data.x_test), Normalizer.create(cell.data.normalize, data.x_train)


def test_one_epoch_changes_every_weight_and_records_history() -> None:
    cell, splits, normalizer = digits_setup()
    recipe = baseline_recipe(1, 8)
    before = {name: p.detach().clone() for name, p in recipe.model.named_parameters()}
    outcome = train(recipe, splits, cell, normalizer)
    unchanged = [name for name, p in recipe.model.named_parameters() if torch.equal(p, before[name])]
    assert unchanged == []
    assert len(outcome.history) == 1 and outcome.history[0]["epoch"] == 1
    assert torch.isfinite(torch.tensor(outcome.history[0]["train_loss"]))
    assert outcome.images_seen == len(splits.train) and outcome.train_seconds > 0
    assert not recipe.model.training and all(p.requires_grad for p in recipe.model.parameters())


def test_a_phase_trains_only_its_parameter_groups() -> None:
    cell, splits, normalizer = digits_setup()
    recipe = baseline_recipe(1, 8)
    model = recipe.model
    recipe.phases = [
        Phase("decoder only", 1, param_groups=lambda m, lr: [{"params": list(m.decoder.parameters()), "lr": lr}])
    ]
    encoder_before = [p.detach().clone() for p in model.encoder.parameters()]
    decoder_before = [p.detach().clone() for p in model.decoder.parameters()]
    train(recipe, splits, cell, normalizer)
    assert all(torch.equal(p, q) for p, q in zip(model.encoder.parameters(), encoder_before))
    assert not any(torch.equal(p, q) for p, q in zip(model.decoder.parameters(), decoder_before))


def test_same_cell_twice_gives_identical_metrics(experiment_file, tmp_path: Path) -> None:
    config = load_experiment(experiment_file())
    first = run_experiment(config, tmp_path / "a", Path("/nonexistent"), "cpu")
    second = run_experiment(config, tmp_path / "b", Path("/nonexistent"), "cpu")
    assert [r["status"] for r in first + second] == ["ok", "ok"]
    metrics = ["mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean", "params"]
    assert {m: first[0][m] for m in metrics} == {m: second[0][m] for m in metrics}
    losses = [
        [
            {k: v for k, v in epoch.items() if k != "seconds"}
            for epoch in json.loads((cell_dir(tmp_path / run, "baseline") / "history.json").read_text())
        ]
        for run in "ab"
    ]
    assert losses[0] == losses[1]


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_the_lr_range_test_steps_as_the_run_does_and_restores_the_weights(precision: str) -> None:
    """``lr: auto`` picks its LR with the run's own step: its forward (compiled or not) under its precision."""
    from aebench.training.loop import choose_lr, start_run

    cell, splits, normalizer = digits_setup()
    cell = dataclasses.replace(cell, train=dataclasses.replace(cell.train, lr="auto", precision=precision))
    recipe = baseline_recipe(1, 8)
    run = start_run(recipe, splits, cell, normalizer, "", None)
    seen: list[torch.dtype | None] = []
    forward = run.step.forward

    def spying(x: torch.Tensor) -> torch.Tensor:
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None)
        return forward(x)

    run.step.forward = spying
    before = {k: v.clone() for k, v in recipe.model.state_dict().items()}
    lr = choose_lr(run)
    assert seen and set(seen) == {None if precision == "fp32" else torch.bfloat16}
    assert 1e-8 <= lr <= 0.1 * (1 + 1e-9)  # a tenth of an LR on the test's grid 1e-7 ... 1
    assert all(torch.equal(before[k], v) for k, v in recipe.model.state_dict().items())


def test_each_epoch_records_the_image_size_it_trained_at() -> None:
    cell, splits, normalizer = digits_setup()
    cell = dataclasses.replace(cell, train=dataclasses.replace(cell.train, epochs=2))
    recipe = baseline_recipe(1, 8)
    recipe.phases = [Phase("small", 1, image_size=4), Phase("full", 1)]
    outcome = train(recipe, splits, cell, normalizer)
    assert [(h["phase"], h["image_size"]) for h in outcome.history] == [("small", 4), ("full", 8)]
