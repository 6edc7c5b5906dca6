"""Classifier networks: the compact CNN and fastai v1's classification head."""

from __future__ import annotations

import torch
from torch import nn


class CompactCNN(nn.Module):
    """Three conv+BN+ReLU stages (32, 64, 128 channels; max-pool after the first two), global average pool, linear."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()

        def stage(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        self.net = nn.Sequential(
            *stage(in_channels, 32),
            nn.MaxPool2d(2),
            *stage(32, 64),
            nn.MaxPool2d(2),
            *stage(64, 128),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(128, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def fastai_head(features: int, num_classes: int) -> nn.Sequential:
    """fastai v1's ``create_head`` after its concat pool: BN, dropout 0.25, Linear(->512), ReLU, BN, dropout 0.5, Linear."""
    return nn.Sequential(
        nn.BatchNorm1d(features),
        nn.Dropout(0.25),
        nn.Linear(features, 512),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(512),
        nn.Dropout(0.5),
        nn.Linear(512, num_classes),
    )
