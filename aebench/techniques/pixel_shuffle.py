"""The baseline with sub-pixel (pixel shuffle + ICNR + blur) upsampling in the decoder."""

from aebench.techniques.baseline import conv_autoencoder
from aebench.techniques.registry import register_technique
from aebench.training.recipe import BuildContext, Recipe, single_phase


@register_technique("pixel_shuffle")
def pixel_shuffle(ctx: BuildContext) -> Recipe:
    """Baseline whose decoder blocks are 1x1 conv (weight norm, ICNR) -> ReLU -> PixelShuffle(2) -> blur."""
    from aebench.models.pixel_shuffle import PixelShuffleBlock

    return Recipe(conv_autoencoder(ctx, up_block=PixelShuffleBlock), single_phase(ctx))
