"""The study's baseline convolutional autoencoder."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aebench.techniques.registry import register_technique
from aebench.training.recipe import BuildContext, Recipe, single_phase

if TYPE_CHECKING:
    from aebench.models.autoencoder import Autoencoder


def conv_autoencoder(ctx: BuildContext, **decoder_kwargs: object) -> Autoencoder:
    """The baseline encoder and decoder for this context (decoder options passed through)."""
    from aebench.models.autoencoder import Autoencoder
    from aebench.models.conv import ConvDecoder, ConvEncoder

    study = ctx.layers == "study"
    return Autoencoder(
        ConvEncoder(ctx.in_channels, ctx.image_size, ctx.latent, study=study),
        ConvDecoder(ctx.latent, ctx.in_channels, ctx.image_size, study=study, **decoder_kwargs),
    )


@register_technique("baseline", role="baseline")
def baseline(ctx: BuildContext) -> Recipe:
    """Conv encoder (12, 24 channels, adaptive max-pool) -> linear latent -> nearest-upsample conv decoder."""
    return Recipe(conv_autoencoder(ctx), single_phase(ctx))
