"""The shared evaluator: reconstruction metrics and downstream accuracy on the full test split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from aebench.config import CellConfig
from aebench.data.pixels import Normalizer
from aebench.evaluation.metrics import psnr, ssim
from aebench.training.batches import eval_batches
from aebench.training.precision import autocast

SAMPLE_COUNT = 8  # the first test images, saved for reconstruction grids


@dataclass
class Evaluation:
    """Metrics (means over test images) and a few saved reconstructions."""

    metrics: dict[str, float]
    samples: dict[str, np.ndarray]


SPREAD_SUMS = ("target", "target_squared", "output", "output_squared")  # per-pixel sums over the test images


def spread(moments: dict[str, torch.Tensor], n: int) -> dict[str, float]:
    """From per-pixel sums: the MSE of the mean test image (the targets' mean per-pixel variance) and the outputs'
    spread across images over the targets' (ratio of root mean variances)."""
    variance = {
        k: (moments[f"{k}_squared"] / n - (moments[k] / n) ** 2).clamp_min(0).mean().item()
        for k in ("target", "output")
    }
    return {
        "mse_mean_image": variance["target"],
        "output_spread": (variance["output"] / variance["target"]) ** 0.5 if variance["target"] > 0 else 0.0,
    }


@torch.no_grad()
def evaluate(
    model: nn.Module,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    cell: CellConfig,
    normalizer: Normalizer,
    classifier: nn.Module,
    precision: str = "fp32",
) -> Evaluation:
    """MAE, MSE, PSNR, SSIM on outputs clamped to [0, 1] against clean targets, and the classifier's
    accuracy on the reconstructions (``accuracy``); forward passes under ``precision``'s autocast, metrics in fp32 and on the clean images (``accuracy_clean``).
    ``mse_input`` is the MSE of the (corrupted) input itself: what a denoiser has to beat. ``mse_mean_image``
    is the MSE of outputting the mean test image for every input, and ``output_spread`` how much the outputs
    vary across test images relative to the images themselves (sd ratio): what tells a reconstruction that
    ignores its input."""
    model.eval()
    names = ("mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean", "mse_input")
    sums = {name: torch.zeros((), device=x_test.device) for name in names}  # read once, after the last batch
    samples: dict[str, list[np.ndarray]] = {"input": [], "target": [], "output": []}
    moments = {k: torch.zeros(x_test.shape[1:], dtype=torch.float64, device=x_test.device) for k in SPREAD_SUMS}
    start = 0
    for inputs, target in eval_batches(x_test, cell, normalizer):
        with autocast(precision, inputs.device):
            out = model(inputs).float().clamp(0, 1)
        labels = y_test[start : start + len(target)]
        err = out - target
        pixels = inputs * normalizer.std + normalizer.mean  # the corrupted input as fed, unclamped
        sums["mse_input"] += (pixels - target).pow(2).flatten(1).mean(1).sum()
        sums["mae"] += err.abs().flatten(1).mean(1).sum()
        sums["mse"] += err.pow(2).flatten(1).mean(1).sum()
        sums["psnr"] += psnr(out, target).sum()
        sums["ssim"] += ssim(out, target).sum()
        for name, images in (("target", target), ("output", out)):
            moments[name] += images.double().sum(0)
            moments[f"{name}_squared"] += images.double().pow(2).sum(0)
        with autocast(precision, inputs.device):
            sums["accuracy"] += (classifier(normalizer(out)).argmax(1) == labels).sum()
            sums["accuracy_clean"] += (classifier(normalizer(target)).argmax(1) == labels).sum()
        if start < SAMPLE_COUNT:
            take = SAMPLE_COUNT - start
            for key, value in (("input", pixels[:take].clamp(0, 1)), ("target", target[:take]), ("output", out[:take])):
                samples[key].append(value.cpu().numpy())
        start += len(target)
    metrics = {k: v.item() / len(x_test) for k, v in sums.items()}
    metrics.update(spread(moments, len(x_test)))
    return Evaluation(metrics, {k: np.concatenate(v) for k, v in samples.items()})
