"""Per-image reconstruction metrics on pixels in [0, 1], batched on the device (torchmetrics' implementations).

SSIM (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K = (0.01, 0.03), data range 1; torchmetrics pads
each image by reflection (5 px) and averages the SSIM map over every pixel and channel, so images need sides
of at least 6 px. PSNR: peak 1, capped at PSNR_CAP_DB so a perfect reconstruction keeps means finite.
"""

from __future__ import annotations

import torch
from torchmetrics.functional.image import (  # seconds to import: here, never inside the timed evaluation
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

PSNR_CAP_DB = 100.0
SSIM_SIGMA = 1.5
SSIM_PAD = 5  # torchmetrics' Gaussian window for sigma 1.5 is 11 wide: 5 px of reflection padding a side


def psnr(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB for a peak of 1, capped at PSNR_CAP_DB."""
    values = peak_signal_noise_ratio(pred, target, data_range=1.0, reduction="none", dim=(1, 2, 3))
    return values.clamp_max(PSNR_CAP_DB)


def ssim(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image SSIM (definition in the module docstring)."""
    if min(pred.shape[-2:]) <= SSIM_PAD:
        raise ValueError(f"SSIM needs images of at least {SSIM_PAD + 1} px a side (got {tuple(pred.shape[-2:])})")
    return structural_similarity_index_measure(
        pred, target, gaussian_kernel=True, sigma=SSIM_SIGMA, data_range=1.0, reduction="none"
    )
