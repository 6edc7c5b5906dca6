"""What a run must carry across an interruption, as tensors and plain data (``torch.load(weights_only=True)`` reads
it back): module weights, optimizer, schedule and gradient-scaler state, and every random stream it draws from."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import nn

from aebench.training.step import Schedule

State = dict[str, Any]


class Resume(Protocol):
    """Keeps a run's state between epochs (the runner: a file in the cell folder), so an interrupted run resumes
    from its last finished epoch."""

    def load(self) -> State | None: ...

    def save(self, state: State) -> None: ...


def rng_state(gen: torch.Generator) -> State:
    """The run's batch generator and torch's global streams (CPU, and CUDA's where a GPU is in use)."""
    cuda = torch.cuda.get_rng_state_all() if gen.device.type == "cuda" else None
    return {"generator": gen.get_state(), "torch": torch.get_rng_state(), "cuda": cuda}


def set_rng_state(gen: torch.Generator, state: State) -> None:
    gen.set_state(state["generator"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None:
        torch.cuda.set_rng_state_all(state["cuda"])


def module_state(module: Any) -> State | None:
    """A module's ``state_dict`` (e.g. a loss holding a trained network and its calibration); None for a function."""
    return module.state_dict() if isinstance(module, nn.Module) else None


def stepper_state(optimizer: torch.optim.Optimizer, schedule: Schedule | None, scaler: torch.amp.GradScaler) -> State:
    return {
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict() if schedule is not None else None,
        "scaler": scaler.state_dict(),
    }


def load_stepper_state(
    state: State, optimizer: torch.optim.Optimizer, schedule: Schedule | None, scaler: torch.amp.GradScaler
) -> None:
    optimizer.load_state_dict(state["optimizer"])
    if schedule is not None:
        schedule.load_state_dict(state["schedule"])
    scaler.load_state_dict(state["scaler"])
