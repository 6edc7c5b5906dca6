"""The technique interface: what a technique builds (a Recipe of model, phases, loss) from a BuildContext."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aebench.config import CellConfig, ConfigError, TrainConfig

if TYPE_CHECKING:
    import torch
    from torch import nn

    from aebench.data.pixels import Normalizer


@dataclass(frozen=True)
class NoParams:
    """A technique without parameters of its own."""


@dataclass(frozen=True)
class BuildContext:
    """What a technique needs to build its recipe; everything here is saved with the checkpoint."""

    in_channels: int
    image_size: int
    latent: int
    train: TrainConfig
    params: Any = field(default_factory=NoParams)
    input_mean: tuple[float, ...] = (0.0,)
    input_std: tuple[float, ...] = (1.0,)
    load_weights: bool = True  # False when a checkpoint replaces the weights: no pretrained fetch, no loss network
    layers: str = "aebench"  # model.layers: the conv layers as aebench first built them, or the study's

    @classmethod
    def for_cell(cls, cell: CellConfig, train_images: torch.Tensor, load_weights: bool = True) -> BuildContext:
        """The one way a cell's context is made: the side and channels of its prepared uint8 training images, the
        statistics of its input normaliser (``data.normalize`` over those images), the cell's settings."""
        from aebench.data.pixels import Normalizer

        stats = Normalizer.create(cell.data.normalize, train_images).state()
        return cls(
            in_channels=train_images.shape[1],
            image_size=train_images.shape[-1],
            latent=cell.model.latent,
            train=cell.train,
            layers=cell.model.layers,
            params=cell.params,
            input_mean=tuple(stats["mean"]),
            input_std=tuple(stats["std"]),
            load_weights=load_weights,
        )

    def normalizer(self, device: torch.device | str = "cpu") -> Normalizer:
        """The input normaliser these statistics describe (what the model's inputs were normalised with)."""
        import torch

        from aebench.data.pixels import Normalizer

        return Normalizer(torch.tensor(self.input_mean, device=device), torch.tensor(self.input_std, device=device))


ParamGroups = Callable[["nn.Module", float], list[dict[str, Any]]]
Setup = Callable[["nn.Module"], None]
Loss = Callable[["torch.Tensor", "torch.Tensor"], "torch.Tensor"]


@dataclass
class Phase:
    """A stretch of training with its own optimizer and schedule.

    ``image_size`` None trains at the data's size; ``param_groups`` None trains every parameter at
    the base LR (otherwise it maps (model, lr) to optimizer groups, e.g. frozen or discriminative);
    ``setup``, if given, reshapes the model for the phase before its first step (e.g. a decoder's output size).
    """

    name: str
    epochs: int
    image_size: int | None = None
    param_groups: ParamGroups | None = None
    setup: Setup | None = None


@dataclass
class LabelledImages:
    """uint8 images (N, C, H, W) with their class labels."""

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int


@dataclass
class Recipe:
    """How one technique is trained: the model, its phases, an optional custom loss or closed-form fit.

    ``prepare(train_split, seed)``, if given, runs once before training (timed as training), e.g. to
    learn a loss network from the labelled training images. ``measured()``, if given, returns numbers the
    technique measured while training (e.g. a feature loss's first-step terms), written into the row.
    """

    model: nn.Module
    phases: list[Phase]
    loss: Loss | None = None
    fit: Callable[[torch.Tensor, int], None] | None = None
    prepare: Callable[[LabelledImages, int], None] | None = None
    measured: Callable[[], dict[str, float]] | None = None


def single_phase(ctx: BuildContext) -> list[Phase]:
    """The default plan: every epoch in one phase, all parameters trained."""
    return [Phase("train", ctx.train.epochs)]


def phase_epochs(train: TrainConfig, fractions: Sequence[float]) -> list[int]:
    """Epochs of a technique's phases: with ``train.cycles``, the phases follow the cycles (early phase i spans
    cycle i, the last phase the cycles left); otherwise ``split_epochs`` of ``train.epochs`` by ``fractions``."""
    if not train.cycles:
        return split_epochs(train.epochs, fractions)
    if len(train.cycles) <= len(fractions):
        raise ConfigError(
            f"train.cycles: this technique has {len(fractions) + 1} phases, which follow the cycles: "
            f"give at least {len(fractions) + 1} cycles (got {len(train.cycles)})"
        )
    early = [cycle.epochs for cycle in train.cycles[: len(fractions)]]
    return [*early, train.epochs - sum(early)]


def split_epochs(total: int, fractions: Sequence[float]) -> list[int]:
    """Epochs for phases taking ``fractions`` of ``total`` (rounded) plus a last phase with the rest.

    ``split_epochs(15, [1/3]) == [5, 10]``; a phase may get 0 epochs when ``total`` is small.
    """
    counts = [round(total * f) for f in fractions]
    return [*counts, total - sum(counts)]
