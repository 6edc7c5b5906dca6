"""Progressive resizing: the baseline trained on small images first, then at full size, weights kept."""

from __future__ import annotations

from dataclasses import dataclass

from aebench.config import ConfigError, opt
from aebench.errors import UserError
from aebench.techniques.baseline import conv_autoencoder
from aebench.techniques.registry import register_technique
from aebench.training.recipe import BuildContext, Phase, Recipe, Setup, phase_epochs


@dataclass(frozen=True)
class ProgressiveParams:
    """Phase plan of ``progressive_resizing`` (``overrides.progressive_resizing.*``); the rest runs at full size."""

    sizes: tuple[int, ...] = opt((16,), "image sides of the early phases, smallest first (the study: 16)")
    fractions: tuple[float, ...] = opt(
        (1 / 3,), "share of train.epochs for each early phase (the study: 5 of 15); with train.cycles, cycle i"
    )

    def __post_init__(self) -> None:
        where = "overrides.progressive_resizing"
        if len(self.sizes) != len(self.fractions):
            raise ConfigError(
                f"{where}: sizes and fractions need one entry each per early phase "
                f"(got {len(self.sizes)} sizes, {len(self.fractions)} fractions)"
            )
        if any(s < 4 for s in self.sizes) or any(f < 0 for f in self.fractions) or sum(self.fractions) > 1:
            raise ConfigError(
                f"{where}: sizes must be >= 4 and fractions >= 0 summing to at most 1 "
                f"(got sizes {list(self.sizes)}, fractions {list(self.fractions)})"
            )


@register_technique("progressive_resizing", params=ProgressiveParams)
def progressive_resizing(ctx: BuildContext) -> Recipe:
    """Baseline trained at 16 px for the first third of the epochs, then at full size (sizes/fractions configurable)."""
    p: ProgressiveParams = ctx.params
    if any(size > ctx.image_size for size in p.sizes):
        raise UserError(
            f"overrides.progressive_resizing.sizes {list(p.sizes)} must not exceed the image size {ctx.image_size}"
        )
    epochs = phase_epochs(ctx.train, p.fractions)
    plan = [(f"{size}px", size) for size in p.sizes] + [("full", None)]
    setup = decoder_side if ctx.layers == "study" else lambda size: None
    phases = [Phase(name, n, image_size=size, setup=setup(size)) for (name, size), n in zip(plan, epochs) if n > 0]
    return Recipe(conv_autoencoder(ctx), phases)


def decoder_side(size: int | None) -> Setup:
    """The study's decoder at a phase: its last upsample outputs the phase's side (x1 at 16 of 32 px), or x2 again
    at full size (``size`` None), instead of a full-size output resized down."""
    return lambda model: model.decoder.blocks[-1].output_side(size)
