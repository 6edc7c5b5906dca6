"""The reference study's published numbers, as data, for the report's comparison.

Source: henriwoodcock/Applying-Modern-Best-Practices-to-Autoencoders (fastai v1 notebooks): test split,
pixels in [0, 1] with the output clamped, 15 epochs, one seed, a Colab GPU. The study's README copies
the CIFAR-10 "ResNet w/o pretrain" numbers into its MNIST feature-loss row; the MNIST feature-loss
row below is the notebook's. The MNIST baseline MAE is blank in the README (notebook value, rounded).
"""

from __future__ import annotations

from dataclasses import dataclass

STUDY = "Woodcock, Applying Modern Best Practices to Autoencoders (fastai v1, one seed, Colab GPU)"
STUDY_RUN = "15 epochs on the full 60,000 / 10,000 split, one seed, a Colab GPU"  # what every published row ran


@dataclass(frozen=True)
class Anchor:
    """One published row: metrics on [0, 1] pixels; ``None`` where the study gives no value."""

    mae: float | None
    mse: float | None
    accuracy: float
    train_seconds: float | None
    note: str = ""


def minutes(m: int, s: int) -> float:
    return 60.0 * m + s


# accuracy of the study's classifier on the original (clean) test images: the ceiling
CLEAN_ACCURACY: dict[str, float] = {"mnist": 0.9912, "cifar10": 0.8179}

ANCHORS: dict[tuple[str, str], Anchor] = {
    ("mnist", "baseline"): Anchor(
        0.0102, 0.000854, 0.9900, minutes(24, 43), "MAE from the notebook (blank in the README)"
    ),
    ("mnist", "pixel_shuffle"): Anchor(0.011906, 0.001174, 0.9870, minutes(27, 40)),
    ("mnist", "progressive_resizing"): Anchor(0.011891, 0.001168, 0.9877, minutes(24, 44)),
    ("mnist", "resnet_pretrained"): Anchor(0.018001, 0.003003, 0.9804, minutes(25, 12)),
    ("mnist", "resnet_scratch"): Anchor(0.018034, 0.003589, 0.9654, minutes(25, 30)),
    ("mnist", "feature_loss"): Anchor(
        0.011859, 0.001169, 0.9886, minutes(26, 52), "notebook values (the README row is a copy error)"
    ),
    ("cifar10", "baseline"): Anchor(0.046274, 0.004345, 0.4558, minutes(23, 47)),
    ("cifar10", "pixel_shuffle"): Anchor(0.046642, 0.004385, 0.4759, minutes(27, 6)),
    ("cifar10", "progressive_resizing"): Anchor(0.046132, 0.004310, 0.4608, minutes(23, 5)),
    ("cifar10", "resnet_pretrained"): Anchor(0.076558, 0.011385, 0.2333, minutes(24, 12)),
    ("cifar10", "resnet_scratch"): Anchor(0.075097, 0.011058, 0.2236, minutes(26, 6)),
    ("cifar10", "feature_loss"): Anchor(0.046206, 0.004301, 0.6209, minutes(28, 34)),
}
