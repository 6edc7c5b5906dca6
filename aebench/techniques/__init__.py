"""Technique registry; importing this package registers every technique module below.

A technique module imports its models (and so torch) inside its builder: naming, listing and planning
techniques (``aebench list``, ``--dry-run``, experiment validation) load no torch.
"""

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

__all__ = [
    "TECHNIQUES",
    "TechniqueInfo",
    "Weights",
    "build_recipe",
    "get_technique",
    "register_technique",
]
