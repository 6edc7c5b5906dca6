"""The classic convolutional denoising autoencoder (no latent size: its code is 64 maps of side size//8)."""

from aebench.errors import UserError
from aebench.techniques.registry import register_technique
from aebench.training.recipe import BuildContext, Recipe, single_phase


@register_technique("conv_dae", min_image_size=12, side_modulus=(8, 4))
def conv_dae(ctx: BuildContext) -> Recipe:
    """Classic conv DAE: conv 16-32-64 + max-pools, transposed convs back, sigmoid; sides 8k+4 (28); ignores model.latent."""
    from aebench.models.conv_dae import conv_dae as build_conv_dae

    try:
        model = build_conv_dae(ctx.in_channels, ctx.image_size)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    return Recipe(model, single_phase(ctx))
