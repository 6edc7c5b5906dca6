"""Input corruptions (target stays clean), binarisation, and the BCE loss path."""

from __future__ import annotations

import pytest
import torch

from aebench.config import CorruptionConfig, DataConfig
from aebench.data.pixels import corrupt, make_batch, to_float
from aebench.training.losses import bce


def grey(value: float = 0.5, n: int = 32) -> torch.Tensor:
    """A batch of uniform grey images (so every change is the corruption's)."""
    return torch.full((n, 1, 32, 32), value)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_gaussian_noise_has_the_configured_sigma_and_zero_mean_unclipped() -> None:
    x = grey()
    noise = corrupt(x, CorruptionConfig(kind="gaussian", sigma=0.7, clip=False), gen()) - x
    assert noise.mean().abs() < 0.01
    assert noise.std().item() == pytest.approx(0.7, rel=0.02)
    assert noise.min() < -0.5 and noise.max() > 0.5  # unclipped: values leave [0, 1]


def test_gaussian_noise_clipped_stays_in_range() -> None:
    out = corrupt(grey(), CorruptionConfig(kind="gaussian", sigma=1.0, clip=True), gen())
    assert out.min() == 0 and out.max() == 1


def test_mask_drops_a_fraction_p_to_zero_and_keeps_the_rest_unscaled() -> None:
    x = torch.rand(32, 1, 32, 32, generator=gen(1)) * 0.9 + 0.05  # no pixel is 0 before masking
    out = corrupt(x, CorruptionConfig(kind="mask", p=0.3), gen())
    dropped = out == 0
    assert dropped.float().mean().item() == pytest.approx(0.3, abs=0.01)
    assert torch.equal(out[~dropped], x[~dropped])  # no inverted-dropout 1/(1-p) rescaling


def test_salt_and_pepper_sets_a_fraction_p_to_black_or_white() -> None:
    x = grey()
    out = corrupt(x, CorruptionConfig(kind="salt_pepper", p=0.2), gen())
    hit = out != 0.5
    assert hit.float().mean().item() == pytest.approx(0.2, abs=0.01)
    assert set(out[hit].unique().tolist()) == {0.0, 1.0}
    assert (out[hit] == 1).float().mean().item() == pytest.approx(0.5, abs=0.03)


def test_corruption_is_reproducible_for_a_seed() -> None:
    cfg = CorruptionConfig(kind="salt_pepper", p=0.2)
    assert torch.equal(corrupt(grey(), cfg, gen(5)), corrupt(grey(), cfg, gen(5)))
    assert not torch.equal(corrupt(grey(), cfg, gen(5)), corrupt(grey(), cfg, gen(6)))


@pytest.mark.parametrize("kind", ["gaussian", "mask", "salt_pepper"])
def test_make_batch_corrupts_the_input_and_returns_the_clean_target(kind: str) -> None:
    images = torch.randint(0, 256, (8, 1, 16, 16), dtype=torch.uint8, generator=gen(2))
    inputs, target = make_batch(
        images, DataConfig(corruption=CorruptionConfig(kind=kind, p=0.5, sigma=0.3)), gen(), train=True
    )
    assert torch.equal(target, to_float(images))
    assert not torch.equal(inputs, target)


def test_binarize_thresholds_input_and_target_at_half() -> None:
    images = torch.tensor([0, 127, 128, 255], dtype=torch.uint8).view(1, 1, 2, 2)
    inputs, target = make_batch(images, DataConfig(binarize=True), gen(), train=False)
    assert target.flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    assert torch.equal(inputs, target)


def test_bce_pushes_out_of_range_predictions_back_in() -> None:
    target = torch.tensor([1.0, 0.0])
    pred = torch.tensor([-0.5, 1.5], requires_grad=True)  # a model without a sigmoid head can overshoot
    loss = bce(pred, target)
    loss.backward()
    assert torch.isfinite(loss)
    assert pred.grad[0] < 0 and pred.grad[1] > 0  # gradient descent moves both towards their targets
