"""The one optimisation step every trainer takes: the autoencoder loop, supervised fits, the LR range test, the bench.

Forward under the run's autocast, loss in fp32, backward through the gradient scaler (enabled for fp16 only),
optimizer step, then the schedule's step.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import torch

from aebench.training.precision import autocast, grad_scaler, resolve_precision
from aebench.training.recipe import Loss

Schedule = torch.optim.lr_scheduler.LRScheduler


@dataclass
class TrainStep:
    """How a trainer steps: its forward (the model, or ``torch.compile`` of it: same parameters), its loss, the
    concrete precision (fp32 | bf16 | fp16) on ``device``, the gradient scaler kept from step to step, and whether
    the loss sees the output clamped to [0, 1] (``train.clamp``)."""

    forward: Callable[[torch.Tensor], torch.Tensor]
    loss_fn: Loss
    precision: str
    device: torch.device
    scaler: torch.amp.GradScaler
    clamp: bool = False

    @classmethod
    def create(
        cls,
        forward: Callable[[torch.Tensor], torch.Tensor],
        loss_fn: Loss,
        precision: str,
        device: torch.device,
        clamp: bool = False,
    ) -> TrainStep:
        """A step for ``precision`` (``auto`` resolved for ``device``) with a fresh gradient scaler."""
        concrete = resolve_precision(precision, device)
        return cls(forward, loss_fn, concrete, device, grad_scaler(concrete, device), clamp)

    def fresh(self) -> TrainStep:
        """The same step with a scaler of its own (a side run, e.g. the LR range test, leaves the run's alone)."""
        return dataclasses.replace(self, scaler=grad_scaler(self.precision, self.device))

    def __call__(
        self,
        optimizer: torch.optim.Optimizer,
        inputs: torch.Tensor,
        target: torch.Tensor,
        schedule: Schedule | None = None,
    ) -> torch.Tensor:
        """One step on a batch; returns its loss (before the update) as a detached device scalar: reading it
        would make the host wait for the device."""
        with autocast(self.precision, self.device):
            output = self.forward(inputs).float()
            loss = self.loss_fn(output.clamp(0, 1) if self.clamp else output, target)
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()
        if schedule is not None:
            schedule.step()
        return loss.detach()
