"""The one interleaved timer: two steps timed in alternating rounds (A B A B ...) in one process, warm-up rounds
excluded, until the 95 % CI of their step-time ratio is within a target or a time cap is reached. The controlled
cost measurement (``cost.py``) and ``aebench bench`` both time through it; contention on a shared machine then
hits both sides of a pair alike, and the ratio holds where absolute times do not."""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import torch
from scipy import stats

from aebench.training.timing import timed

Step = Callable[[], object]
RoundTimer = Callable[[Step, int], float]  # seconds of ``n`` calls of a step


@dataclass(frozen=True)
class TimerSettings:
    """When the rounds stop and how long each is."""

    target: float = 0.05  # the ratio's 95 % CI within +-5 %: done
    max_seconds: float = 30.0  # the cap: seconds of rounds, both sides and the warm-up counted
    min_pairs: int = 5  # pairs of rounds before the CI may end it (the cap needs 2)
    warmup: int = 2  # untimed rounds of each side first (allocations, kernel choice, caches)
    round_seconds: float = 0.2  # how long a timed round should last: sets ``steps`` from the warm-up
    steps: int | None = None  # steps per round, fixed (None: from ``round_seconds``)

    def __post_init__(self) -> None:
        if self.warmup < 1 or self.min_pairs < 1 or (self.steps is not None and self.steps < 1):
            raise ValueError("warmup, min_pairs and steps must be at least 1")


@dataclass(frozen=True)
class Comparison:
    """Per-step seconds of the reference (``a``) and the other side (``b``), one value per timed round, paired."""

    a: list[float]
    b: list[float]
    steps: int  # per round
    stopped: Literal["ci", "cap"]

    @property
    def pairs(self) -> int:
        return len(self.a)

    def log_interval(self) -> tuple[float, float]:
        """The mean log ratio b/a over the pairs and its 95 % CI half-width (Student's t; infinite below 2)."""
        logs = [math.log(y / x) for x, y in zip(self.a, self.b)]
        mean = statistics.fmean(logs)
        if len(logs) < 2:
            return mean, math.inf
        return mean, float(stats.t.ppf(0.975, len(logs) - 1)) * statistics.stdev(logs) / math.sqrt(len(logs))

    def ratio(self) -> tuple[float, float, float]:
        """b's step time over a's (the geometric mean of the paired ratios) and its 95 % CI."""
        mean, half = self.log_interval()
        return math.exp(mean), math.exp(mean - half), math.exp(mean + half)

    def within(self, target: float) -> bool:
        """Whether the CI lies within +-``target`` of the ratio."""
        return math.expm1(self.log_interval()[1]) <= target

    def record(self) -> dict[str, Any]:
        """The numbers a report keeps: the ratio with its CI, the pairs, each side's mean seconds per step."""
        ratio, low, high = self.ratio()
        return {
            "ratio": ratio,
            "ci_low": low,
            "ci_high": high,
            "pairs": self.pairs,
            "stopped": self.stopped,
            "steps_per_round": self.steps,
            "seconds_per_step": statistics.fmean(self.b),
            "baseline_seconds_per_step": statistics.fmean(self.a),
        }


def round_seconds(step: Step, steps: int, device: torch.device) -> float:
    """Seconds of ``steps`` calls of ``step``, the device synchronised before and after."""
    with timed(device) as timer:
        for _ in range(steps):
            step()
    return timer.seconds


def compare(
    a: Step, b: Step, settings: TimerSettings, device: torch.device, timer: RoundTimer | None = None
) -> Comparison:
    """Time ``a`` and ``b`` in rounds A B A B ...: ``settings.warmup`` untimed pairs of one step each, then pairs
    of ``steps`` steps each until the ratio's CI is within the target (after ``min_pairs``) or the seconds spent
    reach the cap (after 2 pairs). ``timer`` replaces the clock (tests)."""
    clock = timer or (lambda step, n: round_seconds(step, n, device))
    warm = [clock(step, 1) for _ in range(settings.warmup) for step in (a, b)]
    spent, slowest = sum(warm), max(warm[-2:])
    steps = settings.steps or max(1, int(settings.round_seconds / slowest) if slowest > 0 else 1)
    result = Comparison([], [], steps, "ci")
    while True:
        x, y = clock(a, steps), clock(b, steps)
        spent += x + y
        result.a.append(x / steps)
        result.b.append(y / steps)
        if result.pairs >= settings.min_pairs and result.within(settings.target):
            return result
        if result.pairs >= 2 and spent >= settings.max_seconds:
            return dataclasses.replace(result, stopped="cap")
