"""The technique registry: a dict filled by a decorator, a factory whose error lists known names."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aebench.errors import UserError
from aebench.training.recipe import BuildContext, NoParams, Recipe


@dataclass(frozen=True)
class TechniqueInfo:
    """A registered technique."""

    name: str
    description: str
    build: Callable[[BuildContext], Recipe]
    params: type


TECHNIQUES: dict[str, TechniqueInfo] = {}


def register_technique(
    name: str, params: type = NoParams
) -> Callable[[Callable[[BuildContext], Recipe]], Callable[[BuildContext], Recipe]]:
    """Register ``fn(ctx) -> Recipe`` under ``name``; its docstring's first line is the description."""

    def wrap(fn: Callable[[BuildContext], Recipe]) -> Callable[[BuildContext], Recipe]:
        if name in TECHNIQUES:
            raise ValueError(f"technique '{name}' registered twice")
        description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        TECHNIQUES[name] = TechniqueInfo(name, description, fn, params)
        return fn

    return wrap


def get_technique(name: str, where: str = "technique") -> TechniqueInfo:
    """The registered technique, or a UserError listing the known names."""
    if name not in TECHNIQUES:
        raise UserError(f"{where}: unknown technique '{name}' (known: {', '.join(TECHNIQUES)})")
    return TECHNIQUES[name]
