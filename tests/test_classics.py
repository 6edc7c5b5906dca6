"""The classic denoising-autoencoder projects: their experiment files, the mlp and conv_dae techniques,
schedules, the validation split with best-weight selection, snapshots and 2-D latents."""

from __future__ import annotations

import json
import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from helpers import built, cell_dir
from torch import nn

from aebench.cli import main
from aebench.config import ConfigError, TrainConfig
from aebench.data.pixels import Normalizer
from aebench.errors import UserError
from aebench.execution.runner import validation_split
from aebench.experiment import load_experiment, parse_experiment
from aebench.models.mlp import even_widths
from aebench.training.batches import eval_batches
from aebench.training.loop import Splits, train
from aebench.training.losses import pixel_loss
from aebench.training.optim import make_schedule

CLASSICS = Path(__file__).resolve().parents[1] / "experiments" / "classics"
FILES = sorted(CLASSICS.glob("*.yaml"))
TINY_RUN = [
    "--device",
    "cpu",
    "--set",
    "datasets=[digits]",
    "--set",
    "seeds=[0]",
    "--set",
    "data.limit_train=256",
    "--set",
    "data.limit_test=48",
    "--set",
    "classifier.epochs=1",
]


def build_model(path: Path, image_size: int = 28, channels: int = 1) -> nn.Module:
    """The model of the first cell of a classic file, built for the given image shape."""
    return built(load_experiment(path).cells()[0], (channels, image_size)).model


def widths(module: nn.Module) -> list[int]:
    """Input width then each Linear's output width, in order."""
    linears = [m for m in module.modules() if isinstance(m, nn.Linear)]
    return [linears[0].in_features, *(m.out_features for m in linears)]


def kinds(module: nn.Module, types: tuple[type, ...]) -> list[type]:
    return [type(m) for m in module.modules() if isinstance(m, types)]


def test_every_classic_project_has_a_file() -> None:
    assert {p.stem for p in FILES} == {"ffn_denoising", "mlp_dropout", "conv_dae", "mlp_regularised"}


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_classic_file_dry_runs_through_the_cli(path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(path), "--dry-run", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"{len(load_experiment(path).cells())} cells" in out and "todo" in out


def test_ffn_widths_are_spaced_evenly_and_mirrored() -> None:
    model = build_model(CLASSICS / "ffn_denoising.yaml")
    assert widths(model.encoder) == [784, 566, 347, 128]
    assert widths(model.decoder) == [128, 347, 566, 784]
    assert isinstance(model.decoder[-2], nn.Sigmoid)
    assert model(torch.rand(3, 1, 28, 28)).shape == (3, 1, 28, 28)


@pytest.mark.parametrize(("start", "end", "layers"), [(784, 128, 3), (128, 784, 3), (3072, 10, 4), (64, 2, 1)])
def test_even_widths_are_the_ceiling_of_the_linear_interpolation(start: int, end: int, layers: int) -> None:
    expected = [math.ceil(v - 1e-9) for v in np.linspace(start, end, layers + 1)]
    assert even_widths(start, end, layers) == expected


def test_mlp_dropout_model_is_784_500_500_z_with_elu_then_tanh() -> None:
    model = build_model(CLASSICS / "mlp_dropout.yaml")
    assert widths(model.encoder) == [784, 500, 500, 2]
    assert kinds(model.encoder, (nn.ELU, nn.Tanh)) == [nn.ELU, nn.Tanh]
    assert kinds(model.decoder, (nn.ELU, nn.Tanh)) == [nn.Tanh, nn.ELU]
    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.1] * 4


def test_mlp_regularised_blocks_are_linear_relu_batchnorm() -> None:
    model = build_model(CLASSICS / "mlp_regularised.yaml")
    layers = [type(m) for m in model.encoder if not isinstance(m, nn.Flatten)]
    assert layers == [nn.Linear, nn.ReLU, nn.BatchNorm1d] * 2 + [nn.Linear]
    assert widths(model.encoder)[-1] == 2


def test_mlp_activation_list_must_match_the_hidden_layers() -> None:
    raw = {
        "name": "x",
        "datasets": ["digits"],
        "techniques": ["mlp"],
        "overrides": {"mlp": {"encoder_layers": 3, "activation": ["elu"]}},
    }
    with pytest.raises(ConfigError, match="activation"):
        parse_experiment(raw, "x.yaml")


@pytest.mark.parametrize(("size", "channels"), [(28, 1), (28, 3), (20, 1)])
def test_conv_dae_maps_an_image_to_its_own_size(size: int, channels: int) -> None:
    model = build_model(CLASSICS / "conv_dae.yaml", size, channels)
    out = model(torch.rand(2, channels, size, size))
    assert out.shape == (2, channels, size, size)
    assert out.min() >= 0 and out.max() <= 1  # sigmoid head


def test_conv_dae_refuses_sizes_it_cannot_rebuild() -> None:
    with pytest.raises(UserError, match="32"):
        build_model(CLASSICS / "conv_dae.yaml", 32)


def test_validation_split_is_disjoint_complete_and_seeded() -> None:
    x = torch.arange(100, dtype=torch.uint8).view(100, 1, 1, 1)
    fit, val = validation_split(x, 0.2, seed=3)
    fit_ids, val_ids = set(fit.flatten().tolist()), set(val.flatten().tolist())
    assert len(val_ids) == 20 and not fit_ids & val_ids and fit_ids | val_ids == set(range(100))
    assert torch.equal(validation_split(x, 0.2, seed=3)[1], val)
    assert not torch.equal(validation_split(x, 0.2, seed=4)[1], val)


def test_training_keeps_the_best_validation_weights() -> None:
    raw = {
        "name": "x",
        "datasets": ["digits"],
        "techniques": ["mlp"],
        "seeds": [0],
        "train": {
            "epochs": 4,
            "batch_size": 16,
            "lr": 0.05,
            "optimizer": "sgd",
            "schedule": "constant",
            "validation_fraction": 0.25,
            "precision": "fp32",  # the kept weights' loss is recomputed below in fp32
        },
        "data": {"normalize": "none"},
        "model": {"latent": 4},
        "overrides": {"mlp": {"encoder_layers": 2}},
    }
    cell = parse_experiment(raw, "x.yaml").cells()[0]
    images = torch.randint(0, 256, (96, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    fit, val = validation_split(images[:64], cell.train.validation_fraction, cell.seed)
    recipe = built(cell, fit)
    normalizer = Normalizer.create("none", images)
    outcome = train(recipe, Splits(fit, images[64:], val), cell, normalizer)
    losses = [r["val_loss"] for r in outcome.history]
    assert outcome.best_epoch == losses.index(min(losses)) + 1
    with torch.no_grad():
        kept = sum(
            pixel_loss("mse")(recipe.model(x), y).item() * len(y) for x, y in eval_batches(val, cell, normalizer)
        )
    kept /= len(val)
    assert kept == pytest.approx(min(losses), rel=1e-5)


def lr_after(cfg: TrainConfig, steps_per_epoch: int, steps: int, lr: float = 1e-3) -> float:
    """The LR after ``steps`` optimizer steps under the configured schedule."""
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=lr)
    schedule = make_schedule(cfg, optimizer, steps_per_epoch, epochs=100)
    for _ in range(steps):
        optimizer.step()
        schedule.step()
    return optimizer.param_groups[0]["lr"]


def test_step_schedule_counting_optimizer_steps() -> None:
    cfg = TrainConfig(schedule="step", step_size=200, gamma=0.9, step_unit="batch")
    assert lr_after(cfg, 118, 199) == pytest.approx(1e-3)
    assert lr_after(cfg, 118, 200) == pytest.approx(0.9e-3)
    assert lr_after(cfg, 118, 401) == pytest.approx(0.81e-3)


def test_step_schedule_counting_epochs() -> None:
    cfg = TrainConfig(schedule="step", step_size=2, gamma=0.5, step_unit="epoch")
    assert lr_after(cfg, 10, 19) == pytest.approx(1e-3)
    assert lr_after(cfg, 10, 20) == pytest.approx(0.5e-3)


def test_multistep_divides_the_lr_by_ten_after_epoch_five() -> None:
    cfg = load_experiment(CLASSICS / "mlp_dropout.yaml").train
    assert lr_after(cfg, 7, 5 * 7 - 1, cfg.lr) == pytest.approx(3e-4)
    assert lr_after(cfg, 7, 5 * 7, cfg.lr) == pytest.approx(3e-5)
    assert lr_after(cfg, 7, 20 * 7, cfg.lr) == pytest.approx(3e-5)


def run_classic(tmp_path: Path, name: str, *sets: str) -> tuple[dict, Path]:
    """Run a classic file on the tiny budget; its one results row and the mlp cell folder."""
    argv = ["run", str(CLASSICS / name), "--out", str(tmp_path), *TINY_RUN]
    for item in sets:
        argv += ["--set", item]
    assert main(argv) == 0
    row = json.loads((tmp_path / "results.jsonl").read_text().splitlines()[0])
    return row, cell_dir(tmp_path, "mlp")


def test_ffn_run_writes_snapshots_gif_and_latents(tmp_path: Path) -> None:
    row, cell = run_classic(tmp_path, "ffn_denoising.yaml", "train.epochs=2", "model.latent=2")
    assert row["status"] == "ok" and row["corruption"] == "gaussian"
    frames = [iio.imread(cell / "snapshots" / f"epoch_00{e}.png") for e in (1, 2)]
    assert frames[0].shape == frames[1].shape and frames[0].shape[1] > 3 * frames[0].shape[0]  # 3 rows x 12 images
    assert not np.array_equal(frames[0], frames[1])  # the reconstructions changed between epochs
    assert iio.imread(cell / "snapshots.gif", index=None).shape[0] == 2
    latents = np.load(cell / "latents.npz")
    assert latents["z"].shape == (48, 2) and latents["labels"].shape == (48,)


def test_mlp_dropout_bce_on_binarised_masked_input_trains(tmp_path: Path) -> None:
    row, cell = run_classic(tmp_path, "mlp_dropout.yaml", "train.epochs=3", "train.lr=3e-3")
    assert row["status"] == "ok" and row["corruption"] == "mask"
    history = json.loads((cell / "history.json").read_text())
    assert history[-1]["test_loss"] < history[0]["test_loss"]
    assert not (cell / "snapshots").exists()  # snapshots are off unless asked for


@pytest.mark.slow
def test_compiled_training_matches_eager_training() -> None:
    raw = {
        "name": "x",
        "datasets": ["digits"],
        "techniques": ["mlp"],
        "seeds": [0],
        "train": {"epochs": 1, "batch_size": 16, "schedule": "constant"},
        "data": {"normalize": "none"},
        "model": {"latent": 4},
        "overrides": {"mlp": {"encoder_layers": 2}},
    }
    images = torch.randint(0, 256, (64, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    outputs = []
    for compile_ in (False, True):
        cell = parse_experiment({**raw, "train": {**raw["train"], "compile": compile_}}, "x.yaml").cells()[0]
        recipe = built(cell, images)
        train(recipe, Splits(images[:48], images[48:]), cell, Normalizer.create("none", images))
        outputs.append(recipe.model(images[48:].float() / 255))
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-4, rtol=1e-4)
