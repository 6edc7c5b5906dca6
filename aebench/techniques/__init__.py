"""Technique registry; importing this package registers every technique module below."""

from aebench.techniques.registry import (
    TECHNIQUES,
    BuildContext,
    NoParams,
    Phase,
    Recipe,
    TechniqueInfo,
    get_technique,
    register_technique,
    single_phase,
)
from aebench.techniques import baseline, conv_dae, mlp, pca  # noqa: F401,E402  (registration side effects)

__all__ = [
    "TECHNIQUES",
    "BuildContext",
    "NoParams",
    "Phase",
    "Recipe",
    "TechniqueInfo",
    "get_technique",
    "register_technique",
    "single_phase",
]
