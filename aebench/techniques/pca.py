"""PCA reference: the optimal linear autoencoder with as many components as the latent."""

from aebench.techniques.registry import register_technique
from aebench.training.recipe import BuildContext, Recipe


@register_technique("pca", role="reference")
def pca(ctx: BuildContext) -> Recipe:
    """PCA (scikit-learn) with model.latent components fitted on the clean training split; a linear floor."""
    from aebench.models.pca import PCAAutoencoder

    model = PCAAutoencoder(ctx.in_channels, ctx.image_size, ctx.latent, list(ctx.input_mean), list(ctx.input_std))
    return Recipe(model, phases=[], fit=model.fit)
