"""The classic convolutional denoising autoencoder: three conv + max-pool stages, three transposed convs."""

from __future__ import annotations

from torch import nn

from aebench.models.autoencoder import Autoencoder


def check_conv_dae_size(image_size: int) -> None:
    """The decoder rebuilds 8*(size//8) + 4 pixels, so only sides of the form 8k + 4 (12, 20, 28, 36, ...) round-trip."""
    if image_size % 8 != 4:
        raise ValueError(
            f"conv_dae maps an image of side 8k+4 (e.g. 28) back to itself; got {image_size} "
            f"(set data.image_size to {image_size - image_size % 8 + 4} or use another technique)"
        )


def conv_dae(channels: int, image_size: int) -> Autoencoder:
    """Encoder conv3x3 C->16->32->64 (pad 1), each followed by 2x2 max-pool, ReLU after the first two;
    decoder ConvTranspose 64->32 (k3, s2), 32->16 (k2, s2), 16->C (k4, s2, p1) with ReLU, ReLU, sigmoid."""
    check_conv_dae_size(image_size)
    encoder = nn.Sequential(
        nn.Conv2d(channels, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.MaxPool2d(2),
    )
    decoder = nn.Sequential(
        nn.ConvTranspose2d(64, 32, 3, stride=2),
        nn.ReLU(),
        nn.ConvTranspose2d(32, 16, 2, stride=2),
        nn.ReLU(),
        nn.ConvTranspose2d(16, channels, 4, stride=2, padding=1),
        nn.Sigmoid(),
    )
    return Autoencoder(encoder, decoder)
