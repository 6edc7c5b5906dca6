"""The reference study's published numbers, settings and headline claims, as data, for the report's comparison.

Source: henriwoodcock/Applying-Modern-Best-Practices-to-Autoencoders (fastai v1 notebooks; ../shared/ANCHORS.md):
test split, 15 epochs, one seed, a Colab GPU. MNIST feature loss and baseline MAE: the notebooks' values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

STUDY = "Woodcock, Applying Modern Best Practices to Autoencoders (fastai v1, one seed, Colab GPU)"


@dataclass(frozen=True)
class Anchor:
    """One published row: metrics on [0, 1] pixels; ``None`` where the study gives no value."""

    mae: float | None
    mse: float | None
    accuracy: float
    train_seconds: float | None


def minutes(m: int, s: int) -> float:
    return 60.0 * m + s


# accuracy of the study's classifier on the original (clean) test images: the ceiling
CLEAN_ACCURACY: dict[str, float] = {"mnist": 0.9912, "cifar10": 0.8179}

ANCHORS: dict[tuple[str, str], Anchor] = {
    ("mnist", "baseline"): Anchor(0.0102, 0.000854, 0.9900, minutes(24, 43)),  # MAE: the notebook's (README blank)
    ("mnist", "pixel_shuffle"): Anchor(0.011906, 0.001174, 0.9870, minutes(27, 40)),
    ("mnist", "progressive_resizing"): Anchor(0.011891, 0.001168, 0.9877, minutes(24, 44)),
    ("mnist", "resnet_pretrained"): Anchor(0.018001, 0.003003, 0.9804, minutes(25, 12)),
    ("mnist", "resnet_scratch"): Anchor(0.018034, 0.003589, 0.9654, minutes(25, 30)),
    ("mnist", "feature_loss"): Anchor(0.011859, 0.001169, 0.9886, minutes(26, 52)),  # the notebook's (README: a copy)
    ("cifar10", "baseline"): Anchor(0.046274, 0.004345, 0.4558, minutes(23, 47)),
    ("cifar10", "pixel_shuffle"): Anchor(0.046642, 0.004385, 0.4759, minutes(27, 6)),
    ("cifar10", "progressive_resizing"): Anchor(0.046132, 0.004310, 0.4608, minutes(23, 5)),
    ("cifar10", "resnet_pretrained"): Anchor(0.076558, 0.011385, 0.2333, minutes(24, 12)),
    ("cifar10", "resnet_scratch"): Anchor(0.075097, 0.011058, 0.2236, minutes(26, 6)),
    ("cifar10", "feature_loss"): Anchor(0.046206, 0.004301, 0.6209, minutes(28, 34)),
}


@dataclass(frozen=True)
class StudyRun:
    """How the study ran one dataset: what a run's length, size and seeds are set against."""

    name: str
    epochs: int
    n_train: int
    n_test: int
    seeds: int
    hardware: str
    device: str = "cuda"  # the device kind of that hardware, as rows record it (less a ':index')


STUDY_RUNS: dict[str, StudyRun] = {
    "mnist": StudyRun("MNIST", 15, 60_000, 10_000, 1, "a Colab GPU"),
    "cifar10": StudyRun("CIFAR-10", 15, 50_000, 10_000, 1, "a Colab GPU"),
}


@dataclass(frozen=True)
class Proxy:
    """A dataset standing in for one the study ran; every number beside a published one carries ``label``."""

    of: str  # the study's dataset (a key of STUDY_RUNS)
    what: str

    @property
    def label(self) -> str:
        return f"proxy: {self.what}, not {STUDY_RUNS[self.of].name}"


# the one place a proxy is named (``../shared/data/README.md``: every pixel differs from CIFAR-10's)
PROXIES: dict[str, Proxy] = {"cifar10-jpeg": Proxy("cifar10", "lossy JPEG copy of CIFAR-10")}

# the study's settings, as the rows' ``settings`` keys (a cell's resolved config, flat) and values; a run that differs
# is told so, the study's value in words where ``STUDY_SETTING_WORDS`` has them (see ../shared/ANCHORS.md).
STUDY_SETTINGS: dict[str, Any] = {
    "data.image_size": 32,
    "data.channels": 3,
    "data.normalize": "imagenet",
    "data.augment": True,
    "data.augment_style": "dihedral",
    "train.batch_size": 128,
    "train.drop_last": True,
    "train.optimizer": "adamw",
    "train.betas": [0.9, 0.99],
    "train.weight_decay": 0.01,
    "train.schedule": "one_cycle",
    "train.cycles": [{"epochs": 5, "lr": 0.003}, {"epochs": 10, "lr": None}],
    "train.clamp": True,
    "model.latent": 1000,
    "model.layers": "study",
    "classifier.model": "resnet34",
}
STUDY_SETTING_WORDS: dict[str, str] = {
    "data.augment_style": "dihedral: 8 orientations, logit-space brightness and contrast (p 0.75 each)",
    "train.optimizer": "adamw, decoupled weight decay on every parameter",
    "train.cycles": "two one-cycle runs: 5 epochs at 3e-3, then 10 at the technique's LR, optimiser state kept",
    "model.layers": "study: BN after the second pool, decoder biases, BN after each pixel-shuffle block",
    "data.resize": "fastai v1.0.60's grid_sample, align_corners=False: each digit 31/32 as large as ours",
}
TECHNIQUE_SETTINGS: dict[str, dict[str, Any]] = {  # per technique, on top of STUDY_SETTINGS
    "feature_loss": {
        "params.feature_net": "vgg16_bn",
        "params.layer_weights": [30.0, 20.0, 10.0],
        "params.gram_weight": 5000.0,
        "params.feature_normalize": "none",
        "params.term_scale": "none",
    },
    "progressive_resizing": {"params.sizes": [16]},
    "pixel_shuffle": {"params.icnr": False},
    "resnet_pretrained": {"params.train_bn": False, "params.lr_groups": "study"},
}
DATASET_SETTINGS: dict[str, dict[str, Any]] = {"mnist": {"data.resize": "fastai"}}  # on top of STUDY_SETTINGS
# the second cycle's peak LR, per (dataset, technique); the pretrained encoder's slice(1e-6, 1e-2) is not one number
STUDY_LR: dict[tuple[str, str], float] = {
    **{("mnist", t): 1e-3 for t in ("baseline", "pixel_shuffle")},
    ("mnist", "progressive_resizing"): 1.74e-4,
    **{("mnist", t): 1e-4 for t in ("resnet_scratch", "feature_loss")},
    **{
        ("cifar10", t): 1e-3
        for t in ("baseline", "pixel_shuffle", "progressive_resizing", "resnet_scratch", "feature_loss")
    },
}
SETTING_EFFECTS: dict[str, str] = {  # what a differing setting does to the comparison
    "classifier.model": "accuracy is scored by another classifier: compare its order, not its values",
    "params.feature_net": "the perceptual terms are measured on another network",
    "params.term_scale": "the loss terms are calibrated, not weighted as the study weighted them",
    "model.latent": "the bottleneck has another size",
    "data.resize": "errors are larger on our larger digits: for PCA at latents 16-128, +5.8 to +6.7 % MAE and +3.4 to "
    "+6.3 % MSE over the study's resize (scripts/resize_effect.py; experiments/mnist-resize.yaml checks it)",
}
STUDY_PRECISION = "fp32"

# the study's test MSE after each of its 15 epochs (MNIST; 1-5 the first cycle; progressive resizing's 1-5 at 16 px)
CURVES: dict[tuple[str, str], tuple[float, ...]] = {
    ("mnist", "baseline"): (0.003609, 0.002220, 0.001729, 0.001359, 0.001097, 0.001144, 0.001212, 0.001212,
                            0.001349, 0.001090, 0.001054, 0.000950, 0.000891, 0.000861, 0.000854),
    ("mnist", "pixel_shuffle"): (0.012859, 0.003433, 0.002461, 0.001876, 0.001710, 0.001731, 0.002142, 0.001689,
                                 0.001561, 0.001457, 0.001367, 0.001281, 0.001217, 0.001182, 0.001174),
    ("mnist", "progressive_resizing"): (0.002959, 0.001457, 0.000976, 0.000583, 0.000436, 0.003487, 0.001927,
                                        0.001546, 0.001400, 0.001303, 0.001243, 0.001211, 0.001185, 0.001169, 0.001168),
    ("mnist", "feature_loss"): (0.005859, 0.002564, 0.001897, 0.001438, 0.001262, 0.001258, 0.001251, 0.001242,
                                0.001224, 0.001216, 0.001199, 0.001186, 0.001178, 0.001171, 0.001169),
    ("mnist", "resnet_pretrained"): (0.044576, 0.041039, 0.039511, 0.038465, 0.037670, 0.015197, 0.009348, 0.006040,
                                     0.006906, 0.004979, 0.003771, 0.003362, 0.003384, 0.002910, 0.003003),
    ("mnist", "resnet_scratch"): (0.025833, 0.009950, 0.006267, 0.003550, 0.003188, 0.003387, 0.003136, 0.003720,
                                  0.003158, 0.004554, 0.003539, 0.003743, 0.003640, 0.004714, 0.003589),
}  # fmt: skip


@dataclass(frozen=True)
class Claim:
    """``best`` is best on each of ``metrics``, with its ``equal_metric`` near ``equal_to``'s (EQUAL_TOLERANCE)."""

    dataset: str
    words: str
    best: str
    metrics: tuple[str, ...]
    equal_to: str | None = None
    equal_metric: str | None = None


EQUAL_TOLERANCE = 0.10  # "equal MSE": means within 10 % of each other (the study's 0.004301 vs 0.004345: 1 %)

CLAIMS: tuple[Claim, ...] = (
    Claim("mnist", "the plain baseline is best on all three measures (MAE, MSE, accuracy)", "baseline",
          ("mae", "mse", "accuracy")),
    Claim("cifar10", "feature loss gives by far the best downstream accuracy (0.62 vs 0.46) at equal MSE",
          "feature_loss", ("accuracy",), equal_to="baseline", equal_metric="mse"),
)  # fmt: skip
