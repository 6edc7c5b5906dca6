"""PCA as a linear autoencoder module (fitted in closed form, not trained)."""

from __future__ import annotations

import torch
from torch import nn


class PCAAutoencoder(nn.Module):
    """Projects onto the top principal components of the clean training pixels and back.

    Takes normalised input like every model (un-normalising it with the stored statistics) and
    returns pixels in [0, 1] space.
    """

    def __init__(self, in_channels: int, image_size: int, components: int, mean: list[float], std: list[float]) -> None:
        super().__init__()
        dim = in_channels * image_size * image_size
        self.components = min(components, dim)
        self.register_buffer("in_mean", torch.tensor(mean).view(1, -1, 1, 1))
        self.register_buffer("in_std", torch.tensor(std).view(1, -1, 1, 1))
        self.register_buffer("pixel_mean", torch.zeros(dim))
        self.register_buffer("basis", torch.zeros(self.components, dim))

    def fit(self, images: torch.Tensor, seed: int) -> None:
        """Fit on clean training images in [0, 1] with scikit-learn's PCA."""
        from sklearn.decomposition import PCA

        flat = images.flatten(1).cpu().numpy()
        n_components = min(self.components, *flat.shape)
        pca = PCA(n_components=n_components, random_state=seed).fit(flat)
        self.pixel_mean.copy_(torch.from_numpy(pca.mean_).float())
        self.basis.zero_()
        self.basis[:n_components].copy_(torch.from_numpy(pca.components_).float())

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        pixels = (x * self.in_std + self.in_mean).flatten(1)
        return (pixels - self.pixel_mean) @ self.basis.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.encode(x) @ self.basis + self.pixel_mean).view(x.shape)
