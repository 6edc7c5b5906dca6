"""Metrics against hand-computed values, and the evaluator's clamping and averaging."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import TINY
from torch import nn

from aebench.data.pixels import Normalizer
from aebench.evaluation.evaluate import SPREAD_SUMS, evaluate, spread
from aebench.evaluation.metrics import PSNR_CAP_DB, psnr, ssim
from aebench.experiment import ExperimentConfig, parse_experiment

C1, C2 = 0.01**2, 0.03**2


def numpy_ssim(x: np.ndarray, y: np.ndarray, size: int = 11, sigma: float = 1.5) -> float:
    """SSIM of two single-channel images by the definition, independently of torch: Gaussian-weighted statistics
    over the window around every pixel of the images padded by reflection (torchmetrics' border handling)."""
    pad = size // 2
    x, y = np.pad(x, pad, mode="reflect"), np.pad(y, pad, mode="reflect")
    coords = np.arange(size) - (size - 1) / 2
    g = np.exp(-(coords**2) / (2 * sigma**2))
    w = np.outer(g, g) / np.outer(g, g).sum()
    scores = []
    for i in range(x.shape[0] - size + 1):
        for j in range(x.shape[1] - size + 1):
            a, b = x[i : i + size, j : j + size], y[i : i + size, j : j + size]
            mu_a, mu_b = (w * a).sum(), (w * b).sum()
            var_a, var_b = (w * (a - mu_a) ** 2).sum(), (w * (b - mu_b) ** 2).sum()
            cov = (w * (a - mu_a) * (b - mu_b)).sum()
            scores.append(((2 * mu_a * mu_b + C1) * (2 * cov + C2)) / ((mu_a**2 + mu_b**2 + C1) * (var_a + var_b + C2)))
    return float(np.mean(scores))


def test_psnr_hand_values() -> None:
    target = torch.rand(3, 1, 4, 4, generator=torch.Generator().manual_seed(0)) * 0.5
    pred = target.clone()
    pred[0] += 0.1  # mse 0.01 -> 20 dB
    pred[1, 0, 0, :] += 0.4  # 4 of 16 pixels off by 0.4: mse 0.04 -> 13.98 dB
    values = psnr(pred, target)
    assert values[0].item() == pytest.approx(20.0, abs=1e-4)
    assert values[1].item() == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-4)
    assert values[2].item() == PSNR_CAP_DB  # identical images: capped, not inf


def test_ssim_of_identical_images_is_one() -> None:
    x = torch.rand(4, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(ssim(x, x), torch.ones(4), atol=1e-5)


def test_ssim_of_flat_images_matches_the_closed_form() -> None:
    a, b = 0.2, 0.6  # no variance: SSIM is the luminance term alone
    pred, target = torch.full((1, 1, 12, 12), a), torch.full((1, 1, 12, 12), b)
    expected = (2 * a * b + C1) / (a * a + b * b + C1)  # float32 variances of flat images are ~1e-8, not 0
    assert ssim(pred, target).item() == pytest.approx(expected, abs=2e-4)


@pytest.mark.parametrize("side", [14, 8], ids=["14px", "8px-digits"])
def test_ssim_matches_a_numpy_computation(side: int) -> None:
    rng = np.random.default_rng(2)
    x = rng.random((side, side))
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
    expected = numpy_ssim(x, y)
    got = ssim(torch.tensor(y, dtype=torch.float32)[None, None], torch.tensor(x, dtype=torch.float32)[None, None])
    assert got.item() == pytest.approx(expected, abs=1e-4)
    assert 0 < expected < 1


def test_ssim_averages_channels() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.random((2, 12, 12)), rng.random((2, 12, 12))
    got = ssim(torch.tensor(x, dtype=torch.float32)[None], torch.tensor(y, dtype=torch.float32)[None])
    assert got.item() == pytest.approx(np.mean([numpy_ssim(x[c], y[c]) for c in range(2)]), abs=1e-4)


def test_ssim_refuses_images_too_small_for_its_window() -> None:
    with pytest.raises(ValueError, match="at least 6 px"):
        ssim(torch.rand(1, 1, 5, 5), torch.rand(1, 1, 5, 5))


class Constant(nn.Module):
    """Outputs ``value`` everywhere, whatever the input."""

    def __init__(self, value: float) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, self.value)


class AlwaysClassZero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = torch.zeros(len(x), 10)
        logits[:, 0] = 1
        return logits


def tiny_config() -> ExperimentConfig:
    return parse_experiment({**TINY, "train": {**TINY["train"], "batch_size": 3}}, "test")


@pytest.mark.parametrize("value", [0.25, 7.0, -3.0], ids=["inside", "above-clamped", "below-clamped"])
def test_evaluate_clamps_outputs_and_averages_over_all_images(value: float) -> None:
    images = (
        torch.tensor([0, 51, 102, 153, 204, 255, 255], dtype=torch.uint8)
        .view(7, 1, 1, 1)
        .expand(7, 1, 8, 8)
        .contiguous()
    )
    labels = torch.tensor([0, 1, 0, 2, 0, 3, 4])
    cell = tiny_config().cells()[0]  # batch size 3: the last batch holds one image
    result = evaluate(Constant(value), images, labels, cell, Normalizer.create("none", images), AlwaysClassZero())
    pixels = images[:, 0, 0, 0].double().numpy() / 255
    out = min(max(value, 0.0), 1.0)
    mse = (out - pixels) ** 2
    assert result.metrics["mae"] == pytest.approx(np.abs(out - pixels).mean(), abs=1e-6)
    assert result.metrics["mse"] == pytest.approx(mse.mean(), abs=1e-6)
    assert result.metrics["psnr"] == pytest.approx(
        np.mean([min(10 * math.log10(1 / m), PSNR_CAP_DB) if m else PSNR_CAP_DB for m in mse]), abs=1e-3
    )
    assert result.metrics["accuracy"] == result.metrics["accuracy_clean"] == pytest.approx(3 / 7)
    assert np.all(result.samples["output"] == out) and result.samples["output"].shape == (7, 1, 8, 8)
    assert np.allclose(result.samples["target"][:, 0, 0, 0], pixels)


def test_the_mean_image_mse_and_output_spread_match_numpy() -> None:
    """What tells a reconstruction that ignores its input: the targets' per-pixel variance (the MSE of outputting
    their mean image) and the outputs' spread relative to it (1 for a copy, 0 for a constant)."""
    rng = np.random.default_rng(0)
    target = torch.from_numpy(rng.uniform(0, 1, (50, 3, 6, 6)))

    def measured(output: torch.Tensor) -> dict[str, float]:
        images = {"target": target, "output": output}
        moments = {k: images[k.removesuffix("_squared")].double() for k in SPREAD_SUMS}
        moments = {k: (v.pow(2) if k.endswith("_squared") else v).sum(0) for k, v in moments.items()}
        return spread(moments, len(target))

    copy, constant = measured(target), measured(target.mean(0, keepdim=True).expand_as(target))
    mean_image_mse = float(((target.numpy() - target.numpy().mean(0)) ** 2).mean())
    assert copy["mse_mean_image"] == pytest.approx(mean_image_mse, rel=1e-9)
    assert copy["output_spread"] == pytest.approx(1.0) and constant["output_spread"] == pytest.approx(0.0, abs=1e-6)
    assert measured(0.5 * target)["output_spread"] == pytest.approx(0.5)
