"""Every registered technique: shapes, gradients, one optimisation step, checkpoint round trip; plus the
study techniques' own behaviour (ICNR, progressive resizing, ResNet phases)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_cell

from aebench.config import build
from aebench.data.pixels import Normalizer
from aebench.errors import UserError
from aebench.execution.checkpoint import load_checkpoint, save_checkpoint
from aebench.hub.weights import timm_body
from aebench.models.pixel_shuffle import PixelShuffleBlock
from aebench.techniques import TECHNIQUES, build_recipe
from aebench.training.loop import Splits, train
from aebench.training.recipe import BuildContext, Recipe
from aebench.training.step import TrainStep


class WeightFiles(dict):
    """Random-init state_dicts written to disk on demand, standing in for downloaded ImageNet weights; keyed by the
    timm body (architecture, feature indices) a technique's ``Weights`` fact names."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def __missing__(self, body: tuple[str, tuple[int, ...]]) -> Path:
        arch, indices = body
        path = self.folder / f"{arch}-{'_'.join(map(str, indices))}.pth"
        torch.save(timm_body(arch, indices, 3, False, None, "").state_dict(), path)
        self[body] = path
        return path


@pytest.fixture(scope="session")
def weight_files(tmp_path_factory: pytest.TempPathFactory) -> WeightFiles:
    return WeightFiles(tmp_path_factory.mktemp("weights"))


def make_ctx(
    name: str, weight_files: dict, channels: int = 1, size: int = 16, epochs: int = 1, **params: Any
) -> BuildContext:
    """The technique's context as the runner makes it, for random images of ``channels`` x ``size`` x ``size``;
    a technique whose ``Weights`` fact names a body for these parameters gets a stand-in weights file."""
    info = TECHNIQUES[name]
    built = build(info.params, params, f"overrides.{name}", "test")
    body = info.weights_body(built)
    if body is not None and info.weights.param not in params:
        arch, indices = body
        params[info.weights.param] = str(weight_files[(arch, tuple(indices))])
        built = build(info.params, params, f"overrides.{name}", "test")
    images = torch.randint(0, 256, (4, channels, size, size), dtype=torch.uint8)
    return BuildContext.for_cell(tiny_cell(name, built, epochs), images)


def fitted(recipe: Recipe, ctx: BuildContext) -> Recipe:
    """Closed-form techniques (PCA) fitted on random images, so their output is not trivially zero."""
    if recipe.fit is not None:
        recipe.fit(torch.rand(20, ctx.in_channels, ctx.image_size, ctx.image_size), 0)
    return recipe


def sizes(name: str) -> tuple[int, int]:
    """The first image sides from 16 and from 32 that the technique accepts (its registry facts)."""
    info = TECHNIQUES[name]
    return tuple(next(s for s in range(start, start + 64) if info.accepts(s)) for start in (16, 32))


def test_the_size_facts_hold_where_they_say_no(weight_files: dict) -> None:
    """A side the registry rejects is one the model rejects too (the facts are not merely permissive)."""
    for name, info in TECHNIQUES.items():
        rejected = next((s for s in range(info.min_image_size, 64) if not info.accepts(s)), None)
        if rejected is None:
            continue
        with pytest.raises(UserError):
            build_recipe(name, make_ctx(name, weight_files, size=rejected))


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("which", [0, 1])
@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_output_has_input_shape(name: str, which: int, channels: int, weight_files: dict) -> None:
    size = sizes(name)[which]
    ctx = make_ctx(name, weight_files, channels, size)
    recipe = fitted(build_recipe(name, ctx), ctx)
    x = torch.rand(3, channels, size, size)
    assert recipe.model.eval()(x).shape == x.shape


@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_backward_reaches_every_parameter(name: str, weight_files: dict) -> None:
    ctx = make_ctx(name, weight_files, size=sizes(name)[0])
    recipe = build_recipe(name, ctx)
    params = list(recipe.model.parameters())
    if not params:
        assert recipe.fit is not None, "a technique without parameters must fit in closed form"
        pytest.skip(f"{name} is fitted in closed form: no gradient (covered by the fit test)")
    x = torch.rand(4, 1, ctx.image_size, ctx.image_size)
    loss = (recipe.loss or F.mse_loss)(recipe.model.train()(x), x)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in params)
    assert any(p.grad.abs().sum() > 0 for p in params)


@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_one_step_or_fit_changes_the_model(name: str, weight_files: dict) -> None:
    ctx = make_ctx(name, weight_files, size=sizes(name)[0])
    recipe = build_recipe(name, ctx)
    before = {k: v.clone() for k, v in recipe.model.state_dict().items()}
    x = torch.rand(4, 1, ctx.image_size, ctx.image_size)
    if recipe.fit is not None:
        recipe.fit(x, 0)
    else:
        optimizer = torch.optim.Adam(recipe.model.parameters(), lr=1e-2)
        step = TrainStep.create(recipe.model.train(), recipe.loss or F.mse_loss, "fp32", torch.device("cpu"))
        step(optimizer, x, x)  # the training step every trainer takes
    after = recipe.model.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if before[k].is_floating_point())


@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_checkpoint_round_trip_gives_identical_output(name: str, weight_files: dict, tmp_path: Path) -> None:
    ctx = make_ctx(name, weight_files, channels=3, size=sizes(name)[0])
    recipe = fitted(build_recipe(name, ctx), ctx)
    x = torch.rand(3, 3, ctx.image_size, ctx.image_size)
    if recipe.fit is None:  # move BatchNorm statistics away from their init
        recipe.model.train()(x)
    save_checkpoint(tmp_path / "c.pt", name, ctx, recipe.model)
    loaded, _ = load_checkpoint(tmp_path / "c.pt")
    torch.testing.assert_close(loaded(x), recipe.model.eval()(x), rtol=0, atol=0)


# --------------------------------------------------------------------------- pixel shuffle


def test_icnr_starts_checkerboard_free() -> None:
    """Before the blur, each 2x2 output block holds one value per channel (nearest-neighbour upsampling)."""
    torch.manual_seed(0)
    block = PixelShuffleBlock(5, 3)
    up = block.upsample(torch.randn(2, 5, 4, 4))
    assert up.shape == (2, 3, 8, 8)
    assert torch.equal(up, F.interpolate(up[..., ::2, ::2], scale_factor=2, mode="nearest"))
    assert up.std() > 0


def test_pixel_shuffle_blur_keeps_size_and_smooths() -> None:
    block = PixelShuffleBlock(4, 2)
    with torch.no_grad():
        block.conv.parametrizations.weight.original1.normal_()  # break the ICNR symmetry
        x = torch.randn(1, 4, 4, 4)
        up, out = block.upsample(x), block(x)
    assert out.shape == up.shape
    assert out.diff(dim=-1).abs().mean() < up.diff(dim=-1).abs().mean()


# --------------------------------------------------------------------------- progressive resizing


def test_progressive_resizing_trains_small_then_full_keeping_weights(weight_files: dict) -> None:
    ctx = make_ctx("progressive_resizing", weight_files, size=16, epochs=2, sizes=[8], fractions=[0.5])
    recipe = build_recipe("progressive_resizing", ctx)
    assert [(p.epochs, p.image_size) for p in recipe.phases] == [(1, 8), (1, None)]
    seen: set[tuple[int, int]] = set()
    recipe.model.encoder.register_forward_hook(lambda m, args, out: seen.add((args[0].shape[-1], m.training)))
    states = [{k: v.clone() for k, v in recipe.model.state_dict().items()}]
    images = torch.randint(0, 256, (64, 1, 16, 16), dtype=torch.uint8)
    cell = tiny_cell("progressive_resizing", ctx.params, epochs=2, batch_size=16)
    outcome = train(
        recipe,
        Splits(images, images[:16]),
        cell,
        Normalizer.create("none", images),
        on_epoch_end=lambda epoch, model: states.append({k: v.clone() for k, v in model.state_dict().items()}),
    )
    assert [r["phase"] for r in outcome.history] == ["8px", "full"]
    assert {s for s, training in seen if training} == {8, 16}
    w0, w1, w2 = (torch.cat([s[k].flatten() for k in s if s[k].is_floating_point()]) for s in states)
    assert (w2 - w1).norm() < (w2 - w0).norm()  # phase 2 continued from phase 1's weights


def test_progressive_resizing_rejects_inconsistent_plan(weight_files: dict) -> None:
    with pytest.raises(UserError, match="sizes and fractions"):
        make_ctx("progressive_resizing", weight_files, sizes=[8, 12], fractions=[0.3])
    with pytest.raises(UserError, match="must not exceed"):
        build_recipe("progressive_resizing", make_ctx("progressive_resizing", weight_files, size=16, sizes=[32]))


# --------------------------------------------------------------------------- ResNet encoder


def test_resnet_pretrained_freezes_then_spreads_learning_rates(weight_files: dict) -> None:
    ctx = make_ctx("resnet_pretrained", weight_files, size=16, epochs=15)
    recipe = build_recipe("resnet_pretrained", ctx)
    model = recipe.model
    assert model.encoder.latent == 1024  # concat avg + max pool of ResNet-34's 512 channels
    frozen, unfrozen = recipe.phases
    assert (frozen.epochs, unfrozen.epochs) == (5, 10)
    trained = {id(p) for g in frozen.param_groups(model, 1e-3) for p in g["params"]}
    assert {id(p) for p in model.decoder.parameters()} <= trained
    assert id(model.encoder.body.net.conv1.weight) not in trained
    groups = unfrozen.param_groups(model, 1e-3)
    lrs = [g["lr"] for g in groups]
    assert (
        lrs == sorted(lrs)
        and lrs[0] == pytest.approx(1e-6)
        and lrs[-2] == pytest.approx(1e-3)
        and lrs[-1] == pytest.approx(1e-2)
    )
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_resnet_pretrained_study_freezes_batchnorm_then_spreads_over_the_studys_10_groups(weight_files: dict) -> None:
    ctx = make_ctx("resnet_pretrained", weight_files, size=16, epochs=15, train_bn=False, lr_groups="study",
                   lr_spread=1e4)  # fmt: skip
    recipe = build_recipe("resnet_pretrained", ctx)
    model, (frozen, unfrozen) = recipe.model, recipe.phases
    trained = {id(p) for g in frozen.param_groups(model, 3e-3) for p in g["params"]}
    assert trained == {id(p) for p in model.decoder.parameters()}  # every ResNet parameter frozen, BN included
    groups = unfrozen.param_groups(model, 1e-2)
    assert len(groups) == 10 and [len(g["params"]) == 0 for g in groups].count(True) == 3  # act1, maxpool, pool
    assert [g["lr"] for g in groups] == pytest.approx([1e-6 * 10 ** (4 * i / 9) for i in range(10)])
    net = model.encoder.body.net
    assert groups[1]["params"] == list(net.bn1.parameters()) and groups[-1]["params"] == list(
        model.decoder.parameters()
    )
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))


def test_resnet_scratch_trains_everything_in_one_phase(weight_files: dict) -> None:
    recipe = build_recipe("resnet_scratch", make_ctx("resnet_scratch", weight_files))
    assert len(recipe.phases) == 1 and recipe.phases[0].param_groups is None


def test_a_row_says_weights_are_needed_only_where_the_parameters_load_them() -> None:
    info = TECHNIQUES["feature_loss"]
    imagenet, trained = (
        build(info.params, p, "overrides.feature_loss", "test") for p in ({}, {"feature_net": "trained"})
    )
    assert info.facts(imagenet)["needs_weights"] == info.weights.description
    assert info.facts(trained)["needs_weights"] is None
