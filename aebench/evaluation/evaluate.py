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
    ``mse_input`` is the MSE of the (corrupted) input itself: what a denoiser has to beat."""
    model.eval()
    names = ("mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean", "mse_input")
    sums = {name: torch.zeros((), device=x_test.device) for name in names}  # read once, after the last batch
    samples: dict[str, list[np.ndarray]] = {"input": [], "target": [], "output": []}
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
        with autocast(precision, inputs.device):
            sums["accuracy"] += (classifier(normalizer(out)).argmax(1) == labels).sum()
            sums["accuracy_clean"] += (classifier(normalizer(target)).argmax(1) == labels).sum()
        if start < SAMPLE_COUNT:
            take = SAMPLE_COUNT - start
            for key, value in (("input", pixels[:take].clamp(0, 1)), ("target", target[:take]), ("output", out[:take])):
                samples[key].append(value.cpu().numpy())
        start += len(target)
    metrics = {k: v.item() / len(x_test) for k, v in sums.items()}
    return Evaluation(metrics, {k: np.concatenate(v) for k, v in samples.items()})
