"""The study's training protocol as general options: fastai's augmentation, two one-cycle runs with the optimizer
state kept, decoupled weight decay on every parameter, the clamp in the training loss, the study's layers."""

from __future__ import annotations

import copy
import dataclasses
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from helpers import built, tiny_cell

from aebench.config import ConfigError, CycleConfig, DataConfig, ModelConfig, TrainConfig
from aebench.data.pixels import augment_dihedral, dihedral, logit_lighting, make_batch
from aebench.data.registry import resize_uint8
from aebench.experiment import load_experiment
from aebench.training.loop import Splits, train
from aebench.training.optim import OneCycles, make_optimizer
from aebench.training.recipe import phase_epochs
from aebench.training.step import TrainStep

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- augmentation


def asymmetric(side: int = 5) -> torch.Tensor:
    """A (1, 1, side, side) image whose 8 dihedral orientations all differ: distinct values 0 .. side^2 - 1."""
    return torch.arange(side * side, dtype=torch.float32).view(1, 1, side, side)


def orientations(x: torch.Tensor) -> list[torch.Tensor]:
    """The dihedral group by rotations and a mirror, computed independently of ``dihedral``."""
    return [torch.rot90(y, r, dims=(-2, -1)) for y in (x, x.flip(-1)) for r in range(4)]


def test_the_8_dihedral_orientations_are_the_group_moved_exactly() -> None:
    x = asymmetric()
    outs = [dihedral(x, torch.tensor([k])) for k in range(8)]
    assert torch.equal(outs[0], x)
    group = orientations(x)
    for out in outs:  # each is one orientation, its pixels moved, never resampled
        assert sum(torch.equal(out, g) for g in group) == 1
    assert len({tuple(o.flatten().tolist()) for o in outs}) == 8


def test_logit_lighting_is_fastais_and_leaves_black_and_white_in_place() -> None:
    x = torch.tensor([0.0, 0.2, 0.5, 0.9, 1.0]).view(1, 1, 1, 5)
    same = logit_lighting(x, torch.tensor([0.5]), torch.tensor([1.0]))
    assert torch.allclose(same, x, atol=1e-6)
    b, c = 0.6, 1.25
    lit = logit_lighting(x, torch.tensor([b]), torch.tensor([c]))
    expected = [1 / (1 + math.exp(-(math.log(v / (1 - v)) + math.log(b / (1 - b))) * c)) for v in (0.2, 0.5, 0.9)]
    assert lit[0, 0, 0, 1:4].tolist() == pytest.approx(expected, abs=1e-6)
    assert lit[0, 0, 0, 0].item() < 1e-5 and lit[0, 0, 0, 4].item() > 1 - 1e-5


def test_dihedral_augmentation_moves_pixels_without_rotation_or_zoom() -> None:
    x = (asymmetric() >= 12).float().repeat(800, 1, 1, 1)  # black and white: lighting leaves it within 1e-5
    out = augment_dihedral(x, torch.Generator().manual_seed(0))
    group = orientations(x[:1])
    matched = [next(i for i, g in enumerate(group) if torch.allclose(o, g[0], atol=1e-5)) for o in out]
    counts = torch.bincount(torch.tensor(matched), minlength=8)
    assert counts.min() > 60  # all 8 orientations drawn, about 100 each


def test_brightness_is_drawn_for_three_images_in_four() -> None:
    grey = torch.full((2000, 1, 2, 2), 0.5)  # contrast keeps 0.5 (logit 0); brightness moves it
    out = augment_dihedral(grey, torch.Generator().manual_seed(1))
    moved = (out[:, 0, 0, 0] - 0.5).abs() > 1e-6
    assert 0.71 < moved.float().mean().item() < 0.79
    bound = 1 / (1 + math.exp(-math.log(0.6 / 0.4) * 1.25))  # brightness 0.6, then contrast 1.25
    assert 1 - bound - 1e-6 <= out.min() and out.max() <= bound + 1e-6


def test_input_and_target_share_the_draw() -> None:
    images = torch.randint(0, 256, (16, 3, 8, 8), dtype=torch.uint8)
    cfg = DataConfig(augment=True, augment_style="dihedral")
    inputs, target = make_batch(images, cfg, torch.Generator().manual_seed(2), train=True)
    assert torch.equal(inputs, target) and not torch.equal(target, images.float() / 255)


# --------------------------------------------------------------------------- schedule and optimizer


def trace(cycles: list[tuple[int, list[float]]]) -> tuple[list[float], list[float]]:
    """LR and beta1 at each step of ``OneCycles`` over one parameter."""
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.AdamW([param], lr=1.0, betas=(0.9, 0.99))
    schedule = OneCycles(optimizer, cycles)
    lrs, moms = [], []
    for _ in range(sum(steps for steps, _ in cycles)):
        lrs.append(optimizer.param_groups[0]["lr"])
        moms.append(optimizer.param_groups[0]["betas"][0])
        optimizer.step()
        schedule.step()
    return lrs, moms


def test_two_cycles_trace_fastais_one_cycle_twice() -> None:
    lrs, moms = trace([(50, [3e-3]), (100, [1e-3])])
    for start, steps, peak in ((0, 50, 3e-3), (50, 100, 1e-3)):
        lr, mom, warm = lrs[start : start + steps], moms[start : start + steps], int(steps * 0.3)
        assert lr[0] == pytest.approx(peak / 25) and mom[0] == pytest.approx(0.95)  # each cycle starts afresh
        assert lr[warm] == pytest.approx(peak) and mom[warm] == pytest.approx(0.85)
        assert lr[: warm + 1] == sorted(lr[: warm + 1]) and lr[warm:] == sorted(lr[warm:], reverse=True)
        assert mom[: warm + 1] == sorted(mom[: warm + 1], reverse=True) and mom[warm:] == sorted(mom[warm:])
        assert peak / 25e4 < lr[-1] < peak / 100  # annealed towards peak / (25 * 1e4)
    assert max(lrs) == pytest.approx(3e-3)


def test_weight_decay_reaches_batchnorm_weights_and_biases() -> None:
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 1), torch.nn.BatchNorm2d(2))
    cfg = TrainConfig(optimizer="adamw", betas=(0.9, 0.99), weight_decay=1e-2)
    optimizer = make_optimizer(cfg, [{"params": list(model.parameters()), "lr": 0.1}])
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.99)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
            p.grad = torch.zeros_like(p)  # no gradient: only the decoupled decay moves a parameter
    optimizer.step()
    for name, p in model.named_parameters():
        assert torch.allclose(p, torch.full_like(p, 1 - 0.1 * 1e-2)), name  # BN weight and bias, conv bias too


def test_the_training_loss_sees_the_clamp() -> None:
    scale = torch.nn.Parameter(torch.tensor(2.0))
    target = torch.ones(1, 1, 2, 2)
    for clamp, loss_expected, grad_expected in ((True, 0.0, 0.0), (False, 1.0, 2.0)):
        step = TrainStep.create(lambda x: scale * x, F.mse_loss, "fp32", torch.device("cpu"), clamp)
        optimizer = torch.optim.SGD([scale], lr=0.0)
        assert step(optimizer, torch.ones(1, 1, 2, 2), target).item() == pytest.approx(loss_expected)
        assert scale.grad.item() == pytest.approx(grad_expected)


def test_cycles_must_add_up_to_the_epochs() -> None:
    with pytest.raises(ConfigError, match="sum to 6, but train.epochs is 5"):
        TrainConfig(epochs=5, cycles=(CycleConfig(2), CycleConfig(4)))
    with pytest.raises(ConfigError, match="one_cycle"):
        TrainConfig(epochs=2, cycles=(CycleConfig(2),), schedule="step")


def test_a_techniques_phases_follow_the_cycles() -> None:
    cycles = TrainConfig(epochs=15, cycles=(CycleConfig(3, 3e-3), CycleConfig(12)))
    assert phase_epochs(cycles, [1 / 3]) == [3, 12]  # not 5 + 10: the phases follow the cycles
    assert phase_epochs(TrainConfig(epochs=15), [1 / 3]) == [5, 10]
    with pytest.raises(ConfigError, match="at least 2 cycles"):
        phase_epochs(TrainConfig(epochs=15, cycles=(CycleConfig(15),)), [1 / 3])


class Saves:
    """A ``Resume`` that keeps every saved epoch state in memory."""

    def __init__(self) -> None:
        self.states: list[dict] = []

    def load(self) -> None:
        return None

    def save(self, state: dict) -> None:
        self.states.append(copy.deepcopy(state))


def run_two_phases(cycles: tuple[CycleConfig, ...]) -> Saves:
    """A 3-epoch progressive-resizing run on 24 random 8 px images (batch 8), its epoch states kept."""
    cell = tiny_cell("progressive_resizing", None, epochs=3, batch_size=8)
    train_cfg = dataclasses.replace(cell.train, cycles=cycles, optimizer="adamw", compile=False, precision="fp32")
    from aebench.techniques.progressive_resizing import ProgressiveParams

    cell = dataclasses.replace(cell, train=train_cfg, params=ProgressiveParams(sizes=(4,), fractions=(1 / 3,)))
    images = torch.randint(0, 256, (24, 1, 8, 8), dtype=torch.uint8)
    recipe = built(cell, images)
    saves = Saves()
    from aebench.data.pixels import Normalizer

    train(recipe, Splits(images, images[:8]), cell, Normalizer.create("none", images), resume=saves)
    return saves


def adam_steps(state: dict) -> int:
    return int(next(iter(state["stepper"]["optimizer"]["state"].values()))["step"])


def test_the_optimizer_state_is_kept_across_cycles_and_phases() -> None:
    kept = run_two_phases((CycleConfig(1, 3e-3), CycleConfig(2)))
    assert [adam_steps(s) for s in kept.states] == [3, 6, 9]  # 24 images, batch 8: one optimizer throughout
    fresh = run_two_phases(())
    assert [adam_steps(s) for s in fresh.states] == [3, 3, 6]  # without cycles each phase starts its own


# --------------------------------------------------------------------------- the study's layers


@pytest.mark.parametrize(
    ("technique", "layers", "count"),
    [
        ("baseline", "study", 3_080_629),
        ("pixel_shuffle", "study", 3_079_042),
        ("resnet_scratch", "study", 22_862_105),
        ("baseline", "aebench", 3_080_566),
        ("pixel_shuffle", "aebench", 3_078_964),
    ],
)
def test_parameter_counts_equal_the_studys_modules(technique: str, layers: str, count: int) -> None:
    from aebench.techniques import TECHNIQUES

    cell = dataclasses.replace(
        tiny_cell(technique, TECHNIQUES[technique].params()), model=ModelConfig(latent=1000, layers=layers)
    )
    model = built(cell, (3, 32)).model
    assert sum(p.numel() for p in model.parameters()) == count


def test_progressive_resizings_study_decoder_outputs_the_phase_size() -> None:
    from aebench.techniques.progressive_resizing import ProgressiveParams

    cell = dataclasses.replace(
        tiny_cell("progressive_resizing", ProgressiveParams(sizes=(16,)), epochs=3),
        model=ModelConfig(latent=8, layers="study"),
    )
    recipe = built(cell, (3, 32))
    small, full = recipe.phases
    model = recipe.model.eval()
    small.setup(model)
    assert model.decoder(model.encoder(torch.rand(2, 3, 16, 16))).shape[-1] == 16  # x1: no resize afterwards
    full.setup(model)
    assert model.decoder(model.encoder(torch.rand(2, 3, 32, 32))).shape[-1] == 32


def test_the_mnist_experiment_is_the_studys_protocol() -> None:
    cell = load_experiment(REPO / "experiments" / "mnist.yaml").cell("mnist", "baseline", 0)
    assert [(c.epochs, c.lr) for c in cell.train.cycles] == [(5, 3e-3), (10, None)] and cell.train.lr == 1e-3
    assert (cell.train.optimizer, cell.train.betas, cell.train.weight_decay) == ("adamw", (0.9, 0.99), 1e-2)
    assert cell.train.clamp and cell.train.drop_last and cell.train.precision == "fp32"
    assert cell.data.augment_style == "dihedral" and cell.model.layers == "study"


def test_the_rate_axis_is_the_mnist_protocol_at_its_first_cycle_and_the_proxy_is_the_cifar_protocol() -> None:
    study = {t: load_experiment(REPO / "experiments" / f"{t}.yaml") for t in ("mnist", "cifar")}
    rate = load_experiment(REPO / "experiments" / "mnist-rate.yaml")
    cells = rate.cells()
    assert len(cells) == 60 and {c.axes["model.latent"] for c in cells} == {8, 16, 32, 64, 128}
    assert {c.technique for c in cells} == {"baseline", "pixel_shuffle", "feature_loss", "pca"}
    for cell in cells:
        theirs = study["mnist"].cell("mnist", cell.technique if cell.technique != "pca" else "baseline", 0)
        assert cell.model.latent == cell.axes["model.latent"] and cell.model.layers == "study"
        assert [(c.epochs, c.lr) for c in cell.train.cycles] == [(5, 3e-3)] and cell.train.epochs == 5
        same = ("batch_size", "drop_last", "optimizer", "betas", "weight_decay", "schedule", "clamp", "precision")
        assert [getattr(cell.train, k) for k in same] == [getattr(theirs.train, k) for k in same]
        assert cell.data == theirs.data and cell.classifier == theirs.classifier
        if cell.technique == "feature_loss":
            assert (cell.params.feature_net, cell.params.term_scale) == ("trained", "auto")
    proxy = load_experiment(REPO / "experiments" / "cifar10-jpeg.yaml")
    cells = proxy.cells()
    assert len(cells) == 15 and {c.dataset for c in cells} == {"cifar10-jpeg"}
    assert {c.dataset_source for c in cells} == {"folder:cifar10-jpeg"}
    for cell in cells:
        theirs = study["cifar"].cell("cifar10", cell.technique, 0)
        assert cell.train == theirs.train and cell.data == theirs.data and cell.model == theirs.model
        if cell.technique == "feature_loss":
            assert (cell.params.feature_net, cell.params.term_scale) == ("trained", "auto")
        else:
            assert cell.params == theirs.params


def test_the_fastai_resize_samples_fastai_v1_0_60s_grid_and_the_default_is_unchanged() -> None:
    """A ramp x[j] = 9 j along the width: fastai v1.0.60 (align_corners left to torch >= 1.3's False) samples output
    pixel i at input position -0.5 + 28 i / 31, so interior pixels hold 9 times that, rounded; aebench's own resize
    samples pixel centres, (i + 0.5) 28 / 32 - 0.5."""
    ramp = (torch.arange(28) * 9).to(torch.uint8).expand(2, 1, 28, 28).contiguous()
    fastai = resize_uint8(ramp, 32, "fastai")[0, 0, 5].float()
    ours = resize_uint8(ramp, 32)[0, 0, 5].float()
    inner = torch.arange(2, 30)
    assert torch.equal(fastai[inner], (9 * (-0.5 + 28 * inner / 31)).round())
    assert torch.equal(ours[inner], (9 * ((inner + 0.5) * 28 / 32 - 0.5)).round())
    assert torch.equal(resize_uint8(ramp, 28, "fastai"), ramp)  # native size: untouched
    cell = load_experiment("experiments/mnist-resize.yaml").cells()[0]
    assert (
        cell.data.resize == "fastai"
        and dataclasses.replace(cell.data, resize="aebench")
        == load_experiment("experiments/mnist.yaml").cells()[0].data
    )  # the check differs from the study's protocol in the resize alone
