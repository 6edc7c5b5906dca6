"""Feature stages of a timm network, and the study's pretrained-ResNet encoder built on them."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class FeatureStages(nn.Module):
    """The activations of a (pruned) timm network at feature stages ``indices``, shallowest first."""

    def __init__(self, net: nn.Module, indices: Sequence[int]) -> None:
        super().__init__()
        self.net = net
        self.indices = list(indices)
        self.channels = [net.feature_info[i]["num_chs"] for i in self.indices]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.net.forward_intermediates(x, indices=self.indices, intermediates_only=True)


class ConcatPoolEncoder(nn.Module):
    """The body's deepest stage pooled by adaptive max and average pooling, concatenated (fastai's AdaptiveConcatPool2d)."""

    def __init__(self, body: FeatureStages) -> None:
        super().__init__()
        self.body = body
        self.latent = 2 * body.channels[-1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.body(x)[-1]
        return torch.cat([F.adaptive_max_pool2d(features, 1), F.adaptive_avg_pool2d(features, 1)], 1).flatten(1)
