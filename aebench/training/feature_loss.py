"""Feature (perceptual + Gram/style) loss on a frozen feature network, as the study's fastai FeatureLoss."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from aebench.data.pixels import IMAGENET_MEAN, IMAGENET_STD, to_float
from aebench.errors import CellFailure
from aebench.models.feature_nets import PooledHead
from aebench.training.fit import fit_classifier
from aebench.training.recipe import LabelledImages, Loss

TermScale = Literal["none", "auto"]


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

    The first call (the first training step's batch) records every term's unweighted value (:meth:`measured`).
    ``term_scale="auto"`` then divides each term by that value and weights it by its share:
    ``pixel/p0 + sum_i (w_i / sum w) f_i/f_i0 + sum_i (w_i**2 / sum w**2) g_i/g_i0`` (the Gram terms only when
    ``gram_weight`` > 0), so pixel, feature and Gram terms each start at 1 whatever the network's feature scale,
    and the layers keep the study's relative weights.
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
        term_scale: TermScale = "none",
    ) -> None:
        super().__init__()
        self.net = net.eval().requires_grad_(False)
        self.layer_weights = list(layer_weights)
        self.gram_weight = gram_weight
        self.pixel = pixel
        self.net_channels = net_channels
        self.term_scale = term_scale
        self.first_terms: list[float] | None = None  # unweighted terms of the first call: pixel, then (f_i, g_i)
        self.normalize = mean is not None
        self.register_buffer("mean", torch.tensor(mean or [0.0]).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std or [1.0]).view(1, -1, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> FeatureLoss:
        """The feature network always stays in eval mode (frozen BatchNorm statistics)."""
        return super().train(False)

    def get_extra_state(self) -> dict[str, list[float] | None]:
        """The first-step terms travel with ``state_dict()`` (a resumed run keeps its calibration)."""
        return {"first_terms": self.first_terms}

    def set_extra_state(self, state: dict[str, list[float] | None]) -> None:
        self.first_terms = state["first_terms"]

    def net_input(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1] as the feature network takes them (channels repeated, optionally normalised)."""
        if x.shape[1] != self.net_channels:
            x = x.expand(-1, self.net_channels, -1, -1)
        return (x - self.mean) / self.std if self.normalize else x

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net(self.net_input(x))

    def terms(self, pred: torch.Tensor, target: torch.Tensor) -> list[torch.Tensor]:
        """The unweighted terms: the pixel loss, then each layer's feature MSE and Gram MSE."""
        with torch.no_grad():
            wanted = self.features(target)
        got = self.features(pred)
        if len(got) != len(self.layer_weights):
            raise ValueError(f"{len(self.layer_weights)} layer weights for {len(got)} feature layers")
        out = [self.pixel(pred, target)]
        for a, b in zip(got, wanted):
            out += [F.mse_loss(a, b), F.mse_loss(gram(a), gram(b))]
        return out

    def weights(self) -> list[float]:
        """One weight per term of :meth:`terms`: the study's raw weights, or the calibrated ones (``auto``)."""
        if self.term_scale == "none":
            return [1.0, *(x for w in self.layer_weights for x in (w, w**2 * self.gram_weight))]
        if self.first_terms is None:
            raise RuntimeError("term_scale auto: the weights are set by the first call")
        total, squares = sum(self.layer_weights), sum(w**2 for w in self.layer_weights)
        gram_on = 1.0 if self.gram_weight > 0 else 0.0
        shares = [1.0, *(x for w in self.layer_weights for x in (w / total, gram_on * w**2 / squares))]
        return [share / value for share, value in zip(shares, self.first_terms)]

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        terms = self.terms(pred, target)
        if self.first_terms is None:
            self.first_terms = [float(t.detach()) for t in terms]  # one host sync, on the first call only
            bad = [name for name, v in self.measured().items() if not (math.isfinite(v) and v > 0)]
            if bad and self.term_scale == "auto":
                raise CellFailure(f"term_scale auto: {', '.join(bad)} is zero or not finite at the first step")
        weights = self.weights()
        loss = weights[0] * terms[0]
        for i in range(1, len(terms), 2):
            loss = loss + weights[i] * terms[i] + weights[i + 1] * terms[i + 1]
        return loss

    def measured(self) -> dict[str, float]:
        """The first call's unweighted terms by name (``first_step_pixel``, ``first_step_feature1``, ...)."""
        if self.first_terms is None:
            return {}
        names = [
            "pixel",
            *(f"{kind}{i}" for i in range(1, len(self.layer_weights) + 1) for kind in ("feature", "gram")),
        ]
        return {f"first_step_{name}": value for name, value in zip(names, self.first_terms)}


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
