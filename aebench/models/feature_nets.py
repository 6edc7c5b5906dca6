"""Feature networks for the feature loss: a small VGG-style CNN that aebench trains itself, and a head to train it."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


class SmallVGG(nn.Module):
    """A small VGG-style feature network for the ``trained`` feature loss: three stages of two
    conv3x3+BN+ReLU (32, 64, 128 channels), max-pool between; returns each stage's output (before its pool)."""

    def __init__(self, in_channels: int, widths: Sequence[int] = (32, 64, 128)) -> None:
        super().__init__()

        def conv(cin: int, cout: int) -> list[nn.Module]:
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        chans = [in_channels, *widths]
        self.stages = nn.ModuleList(nn.Sequential(*conv(a, b), *conv(b, b)) for a, b in zip(chans[:-1], chans[1:]))
        self.channels = list(widths)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, stage in enumerate(self.stages):
            x = stage(F.max_pool2d(x, 2) if i else x)
            out.append(x)
        return out


class PooledHead(nn.Module):
    """Classifier head on a feature network's deepest output: global average pool, linear."""

    def __init__(self, net: nn.Module, channels: int, num_classes: int) -> None:
        super().__init__()
        self.net = net
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.net(x)[-1].mean(dim=(2, 3)))
