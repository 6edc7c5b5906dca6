"""Fully connected autoencoder of the classic denoising projects: evenly spaced or explicit widths."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

from aebench.config import ConfigError, opt
from aebench.techniques.registry import register_technique
from aebench.training.recipe import BuildContext, Recipe, single_phase

Activation = Literal["relu", "elu", "tanh", "leaky_relu", "gelu", "sigmoid"]


@dataclass(frozen=True)
class MLPParams:
    """Widths, blocks and output of the ``mlp`` technique (``overrides.mlp.*``)."""

    encoder_layers: int = opt(3, "Linear layers from input to latent, widths spaced evenly (ceil)", min=1)
    decoder_layers: Union[int, None] = opt(None, "Linear layers from latent to output (null = encoder_layers)", min=1)
    hidden: tuple[int, ...] = opt((), "explicit encoder hidden widths, e.g. [500, 500]; the decoder mirrors them")
    activation: Union[Activation, tuple[Activation, ...]] = opt(
        "relu", "hidden activation, or one per encoder hidden layer (the decoder mirrors the list)"
    )
    norm: Literal["batchnorm", "dropout", "none"] = opt(
        "none", "after each hidden activation: BatchNorm1d, Dropout or nothing"
    )
    dropout: float = opt(0.1, "dropout probability when norm is dropout", min=0)
    output_activation: Literal["sigmoid", "none"] = opt("sigmoid", "activation on the reconstruction")

    def __post_init__(self) -> None:
        if self.dropout >= 1:
            raise ConfigError(f"overrides.mlp.dropout must be below 1 (got {self.dropout})")
        if self.hidden and self.decoder_layers is not None:
            raise ConfigError("overrides.mlp: 'hidden' sets mirrored widths; leave decoder_layers unset")
        if any(w < 1 for w in self.hidden):
            raise ConfigError(f"overrides.mlp.hidden: widths must be positive (got {list(self.hidden)})")
        if isinstance(self.activation, tuple):
            enc, dec = self.hidden_counts()
            if len(self.activation) != enc or dec != enc:
                raise ConfigError(
                    f"overrides.mlp.activation: a list needs one name per encoder hidden layer ({enc}) and a "
                    f"mirrored decoder (got {len(self.activation)} names, {dec} decoder hidden layers)"
                )

    def hidden_counts(self) -> tuple[int, int]:
        """Hidden layers in the encoder and in the decoder."""
        if self.hidden:
            return len(self.hidden), len(self.hidden)
        return self.encoder_layers - 1, (self.decoder_layers or self.encoder_layers) - 1

    def widths(self, n_in: int, latent: int) -> tuple[list[int], list[int]]:
        """Encoder widths (input ... latent) and decoder widths (latent ... input)."""
        from aebench.models.mlp import even_widths

        if self.hidden:
            encoder = [n_in, *self.hidden, latent]
            return encoder, encoder[::-1]
        return even_widths(n_in, latent, self.encoder_layers), even_widths(
            latent, n_in, self.decoder_layers or self.encoder_layers
        )

    def activations(self) -> tuple[list[str], list[str]]:
        """Activation names for the encoder's and the decoder's hidden layers."""
        enc, dec = self.hidden_counts()
        if isinstance(self.activation, tuple):
            return list(self.activation), list(reversed(self.activation))
        return [self.activation] * enc, [self.activation] * dec


@register_technique("mlp", params=MLPParams)
def mlp(ctx: BuildContext) -> Recipe:
    """Fully connected AE: widths spaced evenly to the latent (or explicit), mirrored, Linear+act+BN/Dropout blocks."""
    from aebench.models.mlp import mlp_autoencoder

    p: MLPParams = ctx.params
    encoder_widths, decoder_widths = p.widths(ctx.in_channels * ctx.image_size**2, ctx.latent)
    encoder_acts, decoder_acts = p.activations()
    model = mlp_autoencoder(
        (ctx.in_channels, ctx.image_size, ctx.image_size),
        encoder_widths,
        decoder_widths,
        encoder_acts,
        decoder_acts,
        p.norm,
        p.dropout,
        p.output_activation,
    )
    return Recipe(model, single_phase(ctx))
