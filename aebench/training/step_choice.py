"""``train.compile: auto``: time the training step eager and compiled side by side, keep the faster where it pays.

The probe runs after the first epoch, when the epoch's seconds say how long the rest of the cell will take, and
only when that is long enough to repay a compile. It trains a throwaway optimizer on its own batches and puts
the weights, buffers and random state back, so a cell that stays eager trains exactly as ``compile: false``.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from aebench.training.timing import timed

log = logging.getLogger(__name__)

PROBE_AFTER_SECONDS = 1200.0  # probe only when the rest of the cell trains this long: a 10 % faster step then
# saves 2 minutes, about what a compile costs on a CPU (54-156 s measured for the baseline)
MIN_SPEEDUP = 1.05  # what "measurably faster" means: side-by-side medians at least 5 % apart
ROUNDS, STEPS = 3, 5  # interleaved timed rounds of this many steps each, per side
compile_model: Callable[[nn.Module], nn.Module] = torch.compile  # replaced in tests

ProbeStep = Callable[[nn.Module, int], None]  # one training step through a forward module, at a batch size


@dataclass(frozen=True)
class Probe:
    """Seconds per step eager and compiled (medians), the compile's seconds and the probe's whole seconds."""

    eager: float
    compiled: float
    compile_seconds: float
    seconds: float

    @property
    def speedup(self) -> float:
        return self.eager / self.compiled


@dataclass(frozen=True)
class StepChoice:
    """How the rest of the cell trains: the compiled forward (None: eager), why, and what the probe found."""

    forward: nn.Module | None
    reason: str
    probe: Probe | None = None


def probe_compile(
    model: nn.Module, step: ProbeStep, batch_sizes: list[int], device: torch.device
) -> tuple[Probe, nn.Module]:
    """Compile ``model`` (every batch size in ``batch_sizes`` warmed, timed as compile), then time ``step`` eager
    and compiled in alternating rounds; the weights, buffers and random state are restored afterwards.
    Returns the timings and the compiled module (sharing ``model``'s parameters)."""
    state = copy.deepcopy(model.state_dict())
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        compiled = compile_model(model)
        step(model, batch_sizes[0])  # eager warm-up
        with timed(device) as compile_timer:
            for size in batch_sizes:
                step(compiled, size)
        rounds: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(ROUNDS):
            for name, forward in (("eager", model), ("compiled", compiled)):
                with timed(device) as timer:
                    for _ in range(STEPS):
                        step(forward, batch_sizes[0])
                rounds[name].append(timer.seconds / STEPS)
    model.load_state_dict(state)
    for p in model.parameters():
        p.grad = None
    probe = Probe(
        statistics.median(rounds["eager"]),
        statistics.median(rounds["compiled"]),
        compile_timer.seconds,
        time.perf_counter() - start,
    )
    return probe, compiled


def choose(
    model: nn.Module, step: ProbeStep, batch_sizes: list[int], device: torch.device, remaining: float, recompiles: int
) -> StepChoice:
    """Compiled when the probe finds it at least ``MIN_SPEEDUP`` faster and the seconds it saves over the
    ``remaining`` training seconds exceed the ``recompiles`` (later phases) it will still pay for."""
    if remaining < PROBE_AFTER_SECONDS:
        return StepChoice(None, f"eager: about {remaining:.0f} s of training left, too little to repay a compile")
    try:
        probe, compiled = probe_compile(model, step, batch_sizes, device)
    except Exception as exc:  # no C++ compiler, an unsupported op: the eager step is always there
        log.warning("train.compile auto: compiling failed (%s: %s); training eager", type(exc).__name__, exc)
        return StepChoice(None, f"eager: compiling failed ({type(exc).__name__})")
    saved = remaining * (1 - 1 / probe.speedup)
    pays = probe.speedup >= MIN_SPEEDUP and saved > recompiles * probe.compile_seconds
    reason = f"compiled step {probe.speedup:.2f}x eager, compile {probe.compile_seconds:.0f} s"
    return StepChoice(compiled if pays else None, f"{'compiled' if pays else 'eager'}: {reason}", probe)
