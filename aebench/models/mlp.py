"""Fully connected autoencoder: evenly spaced (or explicit) widths, mirrored decoder."""

from __future__ import annotations

from collections.abc import Sequence

from torch import nn

from aebench.models.autoencoder import Autoencoder

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU,
    "elu": nn.ELU,
    "tanh": nn.Tanh,
    "leaky_relu": nn.LeakyReLU,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
}


def even_widths(start: int, end: int, layers: int) -> list[int]:
    """``layers + 1`` widths from ``start`` to ``end``, each the ceiling of the linear interpolation
    (exact integer arithmetic): ``even_widths(784, 128, 3) == [784, 566, 347, 128]``."""
    if layers < 1:
        raise ValueError(f"an MLP needs at least one layer (got {layers})")
    return [-(-(start * (layers - i) + end * i) // layers) for i in range(layers + 1)]


def mlp_stack(widths: Sequence[int], activations: Sequence[str], norm: str, dropout: float) -> list[nn.Module]:
    """Linear layers through ``widths``; each but the last followed by activation + BatchNorm1d/Dropout."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(widths) - 2:
            layers.append(ACTIVATIONS[activations[i]]())
            if norm == "batchnorm":
                layers.append(nn.BatchNorm1d(n_out))
            elif norm == "dropout":
                layers.append(nn.Dropout(dropout))
    return layers


def mlp_autoencoder(
    shape: tuple[int, int, int],
    encoder_widths: Sequence[int],
    decoder_widths: Sequence[int],
    encoder_activations: Sequence[str],
    decoder_activations: Sequence[str],
    norm: str = "none",
    dropout: float = 0.0,
    output_activation: str = "sigmoid",
) -> Autoencoder:
    """Flatten -> encoder through ``encoder_widths`` (input ... latent, linear bottleneck) -> decoder
    through ``decoder_widths`` (latent ... input) -> optional sigmoid -> image of ``shape`` (C, H, W).
    One activation name per hidden layer of each side; ``norm`` is batchnorm | dropout | none."""
    for widths, acts in ((encoder_widths, encoder_activations), (decoder_widths, decoder_activations)):
        if len(acts) != len(widths) - 2:
            raise ValueError(f"{len(acts)} activations given for {len(widths) - 2} hidden layers")
    decoder = mlp_stack(decoder_widths, decoder_activations, norm, dropout)
    if output_activation == "sigmoid":
        decoder.append(nn.Sigmoid())
    return Autoencoder(
        nn.Sequential(nn.Flatten(), *mlp_stack(encoder_widths, encoder_activations, norm, dropout)),
        nn.Sequential(*decoder, nn.Unflatten(1, shape)),
    )
