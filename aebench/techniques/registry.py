"""The technique registry: a dict filled by a decorator, a factory whose error lists known names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from aebench.errors import UserError
from aebench.training.recipe import BuildContext, NoParams, Recipe

Role = Literal["baseline", "compared", "reference"]
Body = tuple[str, list[int]]  # a timm architecture and the feature indices taken from it


@dataclass(frozen=True)
class Weights:
    """Pretrained weights a technique needs: what they are (in words), the technique parameter naming a local
    state_dict file instead of timm's hub copy, and ``body(params)``: the timm body those weights fill for these
    parameters (None where these parameters need no weights)."""

    description: str
    body: Callable[[Any], Body | None]
    param: str = "weights"


@dataclass(frozen=True)
class TechniqueInfo:
    """A registered technique and the facts about it that the runner copies into each row.

    ``role``: ``baseline`` is what the others are tested against, ``compared`` a contender, ``reference`` a
    yardstick (e.g. PCA, a linear floor) that makes no "best" claim. ``own_loss``: it trains on a loss of its
    own, so its training loss is not comparable with the pixel loss of the others. ``weights``: the pretrained
    weights it needs (None: none). ``min_image_size``: the smallest image side it accepts.
    """

    name: str
    description: str
    build: Callable[[BuildContext], Recipe]
    params: type
    role: Role = "compared"
    own_loss: bool = False
    weights: Weights | None = None
    min_image_size: int = 6
    side_modulus: tuple[int, int] = (1, 0)

    def accepts(self, side: int) -> bool:
        """Whether the technique's model maps images of this side back to themselves."""
        modulus, remainder = self.side_modulus
        return side >= self.min_image_size and side % modulus == remainder

    def weights_body(self, params: Any) -> Body | None:
        """The timm body these parameters load pretrained weights into (None: no weights needed)."""
        return self.weights.body(params) if self.weights is not None else None

    def facts(self, params: Any) -> dict[str, object]:
        """The facts a results row of a cell with these parameters carries, keyed by their row field."""
        needs = self.weights.description if self.weights_body(params) is not None else None
        return {"role": self.role, "own_loss": self.own_loss, "needs_weights": needs}


TECHNIQUES: dict[str, TechniqueInfo] = {}


def register_technique(
    name: str,
    params: type = NoParams,
    role: Role = "compared",
    own_loss: bool = False,
    weights: Weights | None = None,
    min_image_size: int = 6,
    side_modulus: tuple[int, int] = (1, 0),
) -> Callable[[Callable[[BuildContext], Recipe]], Callable[[BuildContext], Recipe]]:
    """Register ``fn(ctx) -> Recipe`` under ``name`` with its facts (see ``TechniqueInfo``); its docstring's first
    line is the description."""

    def wrap(fn: Callable[[BuildContext], Recipe]) -> Callable[[BuildContext], Recipe]:
        if name in TECHNIQUES:
            raise ValueError(f"technique '{name}' registered twice")
        description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        TECHNIQUES[name] = TechniqueInfo(
            name, description, fn, params, role, own_loss, weights, min_image_size, side_modulus
        )
        return fn

    return wrap


def get_technique(name: str, where: str = "technique") -> TechniqueInfo:
    """The registered technique, or a UserError listing the known names."""
    if name not in TECHNIQUES:
        raise UserError(f"{where}: unknown technique '{name}' (known: {', '.join(TECHNIQUES)})")
    return TECHNIQUES[name]


def build_recipe(technique: str, ctx: BuildContext, seed: int | None = None) -> Recipe:
    """The one way a recipe is built (runner, preflight, bench, checkpoint loading, tests): the registered
    technique's builder on ``ctx`` (made by ``BuildContext.for_cell``, or read back from a checkpoint), its
    initial weights drawn from ``torch.manual_seed(seed)`` when a seed is given."""
    info = get_technique(technique)
    if seed is not None:
        import torch

        torch.manual_seed(seed)
    return info.build(ctx)
