"""The technique registry: a dict filled by a decorator, a factory whose error lists known names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from aebench.errors import UserError
from aebench.training.recipe import BuildContext, NoParams, Recipe

Role = Literal["baseline", "compared", "reference"]


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
    weights: str | None = None
    min_image_size: int = 6

    def facts(self) -> dict[str, object]:
        """The facts a results row carries, keyed by their row field."""
        return {"role": self.role, "own_loss": self.own_loss, "needs_weights": self.weights}


TECHNIQUES: dict[str, TechniqueInfo] = {}


def register_technique(
    name: str,
    params: type = NoParams,
    role: Role = "compared",
    own_loss: bool = False,
    weights: str | None = None,
    min_image_size: int = 6,
) -> Callable[[Callable[[BuildContext], Recipe]], Callable[[BuildContext], Recipe]]:
    """Register ``fn(ctx) -> Recipe`` under ``name`` with its facts (see ``TechniqueInfo``); its docstring's first
    line is the description."""

    def wrap(fn: Callable[[BuildContext], Recipe]) -> Callable[[BuildContext], Recipe]:
        if name in TECHNIQUES:
            raise ValueError(f"technique '{name}' registered twice")
        description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        TECHNIQUES[name] = TechniqueInfo(name, description, fn, params, role, own_loss, weights, min_image_size)
        return fn

    return wrap


def get_technique(name: str, where: str = "technique") -> TechniqueInfo:
    """The registered technique, or a UserError listing the known names."""
    if name not in TECHNIQUES:
        raise UserError(f"{where}: unknown technique '{name}' (known: {', '.join(TECHNIQUES)})")
    return TECHNIQUES[name]
