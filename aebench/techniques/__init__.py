"""Technique registry; importing this package registers every technique module below."""

from aebench.techniques import (  # noqa: F401  (registration side effects)
    baseline,
    conv_dae,
    feature_loss,
    mlp,
    pca,
    pixel_shuffle,
    progressive_resizing,
    resnet,
)
from aebench.techniques.registry import (
    TECHNIQUES,
    TechniqueInfo,
    Weights,
    build_recipe,
    get_technique,
    register_technique,
)

__all__ = ["TECHNIQUES", "TechniqueInfo", "Weights", "build_recipe", "get_technique", "register_technique"]
