"""Pixel losses between a reconstruction and its clean target (pixels in [0, 1])."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from aebench.training.recipe import Loss

BCE_EPS = 1e-6


def bce(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on the output clamped to (0, 1) with a straight-through gradient,
    so a model without a sigmoid head is still pushed back into range."""
    clamped = pred - (pred - pred.clamp(BCE_EPS, 1 - BCE_EPS)).detach()
    return F.binary_cross_entropy(clamped, target)


PIXEL_LOSSES: dict[str, Loss] = {"mse": F.mse_loss, "l1": F.l1_loss, "bce": bce}


def pixel_loss(name: str) -> Loss:
    """The pixel loss named in ``train.loss``."""
    return PIXEL_LOSSES[name]
