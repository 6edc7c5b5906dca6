"""The generic encoder/decoder pair every neural technique builds."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Autoencoder(nn.Module):
    """``decoder(encoder(x))``, resized to the input's size when they differ.

    The resize lets a size-agnostic encoder (adaptive pooling) train at a smaller image size, as
    progressive resizing does, while the decoder keeps its nominal output size.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.decoder(self.encoder(x))
        if out.shape[-2:] != x.shape[-2:]:
            # in fp32: the CPU's antialiased resize has no bf16 kernel (and autocast would hand it bf16)
            out = F.interpolate(out.float(), size=x.shape[-2:], mode="bilinear", antialias=True, align_corners=False)
        return out
