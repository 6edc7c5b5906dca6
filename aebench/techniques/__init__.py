"""Technique registry; importing this package registers every technique module below."""

from aebench.techniques.registry import (
    TECHNIQUES,
    BuildContext,
    LabelledImages,
    NoParams,
    Phase,
    Recipe,
    TechniqueInfo,
    get_technique,
    register_technique,
    single_phase,
)
from aebench.techniques import baseline, conv_dae, feature_loss, mlp, pca, pixel_shuffle, progressive_resizing, resnet  # noqa: F401,E402  (registration side effects)

__all__ = [
    "TECHNIQUES",
    "BuildContext",
    "LabelledImages",
    "NoParams",
    "Phase",
    "Recipe",
    "TechniqueInfo",
    "get_technique",
    "register_technique",
    "single_phase",
]
