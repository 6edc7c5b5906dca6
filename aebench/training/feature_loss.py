"""Feature (perceptual + Gram/style) loss on a frozen feature network, as the study's fastai FeatureLoss."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aebench.data.pixels import IMAGENET_MEAN, IMAGENET_STD, to_float
from aebench.models.feature_nets import PooledHead
from aebench.training.fit import fit_classifier
from aebench.training.recipe import LabelledImages, Loss


def gram(x: torch.Tensor) -> torch.Tensor:
    """Gram matrices of feature maps (N, C, H, W) -> (N, C, C), divided by C*H*W."""
    n, c, h, w = x.shape
    flat = x.reshape(n, c, h * w)
    return flat @ flat.transpose(1, 2) / (c * h * w)


class FeatureLoss(nn.Module):
    """``pixel(pred, target) + sum_i w_i * MSE(f_i) + sum_i w_i**2 * gram_weight * MSE(gram(f_i))``.

    ``net(x)`` returns the feature maps f_i (shallowest first); it stays frozen and in eval mode.
    Images in [0, 1] are repeated to ``net_channels`` when grey, then normalised with ``mean``/``std``
    if given (the study fed its VGG un-normalised [0, 1] images).
    """

    def __init__(
        self,
        net: nn.Module,
        layer_weights: Sequence[float],
        gram_weight: float,
        pixel: Loss,
        net_channels: int,
        mean: Sequence[float] | None = None,
        std: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.layer_weights = list(layer_weights)
        self.gram_weight = gram_weight
        self.pixel = pixel
        self.net_channels = net_channels
        self.normalize = mean is not None
        self.register_buffer("mean", torch.tensor(mean or [0.0]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std or [1.0]).view(1, -1, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FeatureLoss:
        """The feature network always stays in eval mode (frozen BatchNorm statistics)."""
        return super().train(False)

    def net_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] as the feature network takes them (channels repeated, optionally normalised)."""
        if x.shape[1] != self.net_channels:
            x = x.expand(-1, self.net_channels, -1, -1)
        return (x - self.mean) / self.std if self.normalize else x

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net(self.net_input(x))

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            wanted = self.features(target)
        got = self.features(pred)
        if len(got) != len(self.layer_weights):
            raise ValueError(f"{len(self.layer_weights)} layer weights for {len(got)} feature layers")
        loss = self.pixel(pred, target)
        for w, a, b in zip(self.layer_weights, got, wanted):
            loss = loss + w * F.mse_loss(a, b) + w**2 * self.gram_weight * F.mse_loss(gram(a), gram(b))
        return loss


def imagenet_stats(channels: int) -> tuple[list[float], list[float]]:
    """ImageNet mean/std for ``channels`` (their average for grey, as the input normaliser does)."""
    if channels == 3:
        return list(IMAGENET_MEAN), list(IMAGENET_STD)
    return [sum(IMAGENET_MEAN) / 3], [sum(IMAGENET_STD) / 3]


def train_feature_net(
    loss: FeatureLoss,
    data: LabelledImages,
    seed: int,
    epochs: int,
    batch_size: int = 128,
    lr: float = 2e-3,
    precision: str = "fp32",
) -> None:
    """Train ``loss.net`` (a SmallVGG) as a classifier of the clean training images, then freeze it again.

    A head is attached for training and discarded; inputs get the loss's own repeat/normalisation.
    """
    net = loss.net.requires_grad_(True)
    model = PooledHead(net, net.channels[-1], data.num_classes).to(data.images.device)
    fit_classifier(
        model,
        data.images,
        data.labels,
        epochs,
        batch_size,
        lr,
        seed + 1,  # +1: not the evaluation classifier's stream
        lambda images: loss.net_input(to_float(images)),
        desc="feature net",
        precision=precision,
    )
    net.eval().requires_grad_(False)
