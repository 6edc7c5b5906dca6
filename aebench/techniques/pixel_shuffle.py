"""The baseline with sub-pixel (pixel shuffle + ICNR + blur) upsampling in the decoder."""

from dataclasses import dataclass
from functools import partial

from aebench.config import opt
from aebench.techniques.baseline import conv_autoencoder
from aebench.techniques.registry import register_technique
from aebench.training.recipe import BuildContext, Recipe, single_phase


@dataclass(frozen=True)
class PixelShuffleParams:
    """Init of ``pixel_shuffle``'s blocks (``overrides.pixel_shuffle.*``)."""

    icnr: bool = opt(
        True,
        "ICNR init that survives weight norm (aebench); false = the study's effective init: fastai v1 wrote ICNR to "
        "a weight that weight norm recomputed, so its kernels started Kaiming-normal",
        added=True,
    )


@register_technique("pixel_shuffle", params=PixelShuffleParams)
def pixel_shuffle(ctx: BuildContext) -> Recipe:
    """Baseline whose decoder blocks are 1x1 conv (weight norm, ICNR) -> ReLU -> PixelShuffle(2) -> blur."""
    from aebench.models.pixel_shuffle import PixelShuffleBlock

    block = partial(PixelShuffleBlock, icnr=ctx.params.icnr)
    return Recipe(conv_autoencoder(ctx, up_block=block), single_phase(ctx))
