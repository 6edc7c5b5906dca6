"""The study's baseline convolutional encoder and decoder, for any channel count and image size."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

UpBlockFactory = Callable[..., nn.Module]  # (in_channels, out_channels, study=...) -> block


def check_size(image_size: int) -> None:
    """The baseline halves the image twice, so the side must be divisible by 4."""
    if image_size % 4:
        raise ValueError(f"the conv autoencoder needs an image size divisible by 4 (got {image_size})")


class ConvEncoder(nn.Module):
    """conv3x3(C->12)+BN+ReLU, adaptive max-pool to size/2 + BN + ReLU, conv3x3(12->24)+BN+ReLU,
    adaptive max-pool to size/4 (+ BN + ReLU: ``study``), flatten, Linear(24*(size/4)^2 -> latent)."""

    def __init__(self, in_channels: int, image_size: int, latent: int, study: bool = False) -> None:
        super().__init__()
        check_size(image_size)
        grid = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, 12, 3, padding=1, bias=False),
            nn.BatchNorm2d(12),
            nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(image_size // 2),
            nn.BatchNorm2d(12),
            nn.ReLU(inplace=True),
            nn.Conv2d(12, 24, 3, padding=1, bias=False),
            nn.BatchNorm2d(24),
            nn.ReLU(inplace=True),
            nn.AdaptiveMaxPool2d(grid),
            *([nn.BatchNorm2d(24), nn.ReLU(inplace=True)] if study else []),
        )
        self.head = nn.Linear(24 * grid * grid, latent)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x).flatten(1))


class UpsampleBlock(nn.Sequential):
    """Nearest x2, BN, conv3x3 (with bias: ``study``), BN, ReLU (the study's decoder block)."""

    def __init__(self, in_channels: int, out_channels: int, study: bool = False) -> None:
        super().__init__(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=study),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )

    def output_side(self, side: int | None) -> None:
        """Upsample to ``side`` pixels instead of x2 (None: x2 again), as the study's progressive resizing swaps
        its last upsample (x1 at 16 px, x2 at 32 px)."""
        upsample = self[0]
        upsample.size, upsample.scale_factor = (None, 2.0) if side is None else ((side, side), None)


class ConvDecoder(nn.Module):
    """Linear(latent -> 24*(size/4)^2), reshape, two x2 upsample blocks 24->12->C."""

    def __init__(
        self,
        latent: int,
        out_channels: int,
        image_size: int,
        up_block: UpBlockFactory = UpsampleBlock,
        study: bool = False,
    ) -> None:
        super().__init__()
        check_size(image_size)
        self.grid = image_size // 4
        self.head = nn.Linear(latent, 24 * self.grid * self.grid)
        self.blocks = nn.Sequential(up_block(24, 12, study=study), up_block(12, out_channels, study=study))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.head(z).view(-1, 24, self.grid, self.grid))
