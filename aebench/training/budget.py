"""Equal-time training: ``train.budget_seconds`` split across a technique's phases by their epochs."""

from __future__ import annotations

from itertools import accumulate

from aebench.training.recipe import Phase


def phase_deadlines(phases: list[Phase], budget: float | None) -> list[float | None]:
    """The run's training seconds at which each phase stops: the budget shared by the phases' epochs, the last
    phase ending at the budget itself (so an earlier phase's overrun is taken from the later ones)."""
    if budget is None:
        return [None] * len(phases)
    total = sum(p.epochs for p in phases)
    return [budget * done / total for done in accumulate(p.epochs for p in phases)]
