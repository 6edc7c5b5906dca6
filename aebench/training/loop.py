"""The one training loop every technique shares, read top to bottom: run -> phase -> epoch -> step."""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from tqdm.auto import tqdm

from aebench.config import CellConfig
from aebench.data.pixels import Normalizer, make_batch, to_float
from aebench.errors import CellFailure
from aebench.training.batches import batch_starts, eval_batches
from aebench.training.budget import phase_deadlines
from aebench.training.losses import pixel_loss
from aebench.training.optim import (
    OneCycles,
    lr_range_test,
    make_optimizer,
    make_schedule,
    phase_groups,
    same_parameters,
    trainable_groups,
)
from aebench.training.precision import autocast
from aebench.training.recipe import LabelledImages, Phase, Recipe
from aebench.training.resume import (
    Resume,
    State,
    load_stepper_state,
    module_state,
    rng_state,
    set_rng_state,
    stepper_state,
)
from aebench.training.step import Schedule, TrainStep
from aebench.training.step_choice import ProbeStep, choose
from aebench.training.timing import Timer, timed

log = logging.getLogger(__name__)
PROBE_SEED = 4321  # the compile probe's own batches: the run's generator is not touched

EpochHook = Callable[[int, nn.Module], None]
Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass
class Splits:
    """uint8 image tensors on the training device."""

    train: torch.Tensor
    test: torch.Tensor
    val: torch.Tensor | None = None
    train_labels: torch.Tensor | None = None  # needed only by recipes with a ``prepare`` step
    num_classes: int = 0


@dataclass
class TrainOutcome:
    """What training produced besides the weights."""

    history: list[dict[str, float | int | str | None]] = field(default_factory=list)
    train_seconds: float = 0.0
    images_seen: int = 0
    steps: int = 0  # optimizer steps taken
    epochs_trained: float = 0.0  # fractional where a budget stops an epoch early
    lr: float | None = None
    best_epoch: int | None = None
    precision: str = "fp32"
    compile_seconds: float | None = (
        None  # train.compile: the first step of each phase (compilation), not in train_seconds
    )
    resumed_at: list[int] = field(default_factory=list)  # epochs after which an interrupted run went on
    step_mode: str = "eager"  # or "compiled" (train.compile true, or auto where the probe chose it)
    compile_speedup: float | None = None  # train.compile auto: the probe's compiled-over-eager step speed
    probe_seconds: float | None = None  # train.compile auto: the probe's seconds (its compile included)


@dataclass
class Run:
    """The state one training run carries from phase to phase."""

    recipe: Recipe
    splits: Splits
    cfg: CellConfig
    normalizer: Normalizer
    step: TrainStep  # forward (compiled or not), loss, precision and gradient scaler
    gen: torch.Generator
    desc: str
    on_epoch_end: EpochHook | None
    outcome: TrainOutcome = field(default_factory=TrainOutcome)
    epoch: int = 0
    best_val: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    compile_pending: bool = False  # the phase's next step compiles the model (timed apart from training)
    choice_pending: bool = False  # train.compile auto: the step is chosen after the (next) epoch
    deadline: float | None = None  # training seconds at which the current phase stops (train.budget_seconds)
    resume: Resume | None = None  # saves the state after every epoch
    phase_index: int = 0  # the phase being trained
    optimizer: torch.optim.Optimizer | None = None  # the phase's (train.cycles: kept while the parameters stay)

    def out_of_time(self, epoch_timer: Timer | None = None) -> bool:
        """Whether the phase's deadline has passed, counting the running epoch's seconds (read only under a budget)."""
        if self.deadline is None:
            return False
        running = epoch_timer.elapsed() if epoch_timer is not None else 0.0
        return self.outcome.train_seconds + running >= self.deadline

    @property
    def device(self) -> torch.device:
        return self.splits.train.device

    def batch(self, images: torch.Tensor, size: int | None = None) -> Batch:
        """A training batch: (normalised, corrupted, augmented input; clean target)."""
        inputs, target = make_batch(images, self.cfg.data, self.gen, train=True, size=size)
        return self.normalizer(inputs), target

    def random_batch(self, size: int | None = None) -> Batch:
        """A batch drawn with replacement (the LR range test's stream)."""
        idx = torch.randint(
            len(self.splits.train), (self.cfg.train.batch_size,), generator=self.gen, device=self.device
        )
        return self.batch(self.splits.train[idx], size)

    def free_step(self, lr: float) -> Callable[[], torch.Tensor]:
        """A training step as ``train`` takes it, on batches drawn at random (augmentation included), in the
        recipe's last phase (its parameter groups and image size) at a constant ``lr``: what the bench times."""
        phase = self.recipe.phases[-1]
        if phase.setup is not None:
            phase.setup(self.recipe.model)
        optimizer = make_optimizer(self.cfg.train, trainable_groups(self.recipe.model, phase, lr))
        self.recipe.model.train()
        return lambda: self.step(optimizer, *self.random_batch(phase.image_size))


def train(
    recipe: Recipe,
    splits: Splits,
    cfg: CellConfig,
    normalizer: Normalizer,
    desc: str = "",
    on_epoch_end: EpochHook | None = None,
    resume: Resume | None = None,
) -> TrainOutcome:
    """Fit the recipe's model in place; returns history and timing. Deterministic for a given seed on CPU.

    With ``resume``, the state is saved after every epoch, and a saved state is picked up where it stopped (its
    preparation, LR and finished epochs not redone): on CPU the result equals an uninterrupted run's.
    """
    run = start_run(recipe, splits, cfg, normalizer, desc, on_epoch_end)
    run.resume = resume
    state = resume.load() if resume is not None else None
    if state is not None:
        restore(run, state)
    else:
        fit_and_prepare(run)
        run.outcome.lr = choose_lr(run) if recipe.phases else None
    deadlines = phase_deadlines(recipe.phases, cfg.train.budget_seconds)
    for index, (phase, deadline) in enumerate(zip(recipe.phases, deadlines)):
        if index >= run.phase_index:
            run.phase_index, run.deadline = index, deadline
            train_phase(run, phase, state if state is not None and index == state["phase_index"] else None)
    if recipe.phases and run.outcome.steps == 0:
        budget = cfg.train.budget_seconds
        why = (
            f"train.budget_seconds {budget} was spent before the first step (raise it)"
            if budget is not None and run.outcome.train_seconds >= budget
            else f"{len(splits.train)} training images give no batch of 2 or more (raise data.limit_train)"
        )
        raise CellFailure(f"trained 0 steps: {why}")
    return finish_run(run)


def start_run(
    recipe: Recipe, splits: Splits, cfg: CellConfig, normalizer: Normalizer, desc: str, on_epoch_end: EpochHook | None
) -> Run:
    """Seed everything, place the model and its loss on the device."""
    model, device = recipe.model, splits.train.device
    torch.manual_seed(cfg.seed)
    gen = torch.Generator(device=device).manual_seed(cfg.seed)
    loss_fn = recipe.loss or pixel_loss(cfg.train.loss)
    if isinstance(loss_fn, nn.Module):  # e.g. a feature loss holding a network
        loss_fn.to(device)
    compiled = cfg.train.compile is True
    forward = torch.compile(model) if compiled else model  # shares the model's parameters
    step = TrainStep.create(forward, loss_fn, cfg.train.precision, device, cfg.train.clamp)
    run = Run(recipe, splits, cfg, normalizer, step, gen, desc, on_epoch_end)
    run.outcome.precision = step.precision
    run.outcome.compile_seconds = 0.0 if compiled else None
    run.outcome.step_mode = "compiled" if compiled else "eager"
    run.choice_pending = cfg.train.compile == "auto"
    return run


def fit_and_prepare(run: Run) -> None:
    """A closed-form fit (PCA) and a recipe's prepare step, both timed as training."""
    recipe, splits, outcome = run.recipe, run.splits, run.outcome
    if recipe.fit is not None:
        with timed(run.device) as timer:
            recipe.fit(to_float(splits.train), run.cfg.seed)
        outcome.train_seconds += timer.seconds
        outcome.images_seen += len(splits.train)
    if recipe.prepare is not None:
        if splits.train_labels is None:
            raise ValueError("this technique's prepare step needs the training labels (Splits.train_labels)")
        with timed(run.device) as timer:
            recipe.prepare(LabelledImages(splits.train, splits.train_labels, splits.num_classes), run.cfg.seed)
        outcome.train_seconds += timer.seconds


def choose_lr(run: Run) -> float:
    """The configured LR, or an LR range test's pick (timed as training)."""
    if run.cfg.train.lr != "auto":
        return float(run.cfg.train.lr)
    with timed(run.device) as timer:
        lr = lr_range_test(run.recipe.model, run.step, run.random_batch, lambda g: make_optimizer(run.cfg.train, g))
    run.outcome.train_seconds += timer.seconds
    return lr


def train_phase(run: Run, phase: Phase, state: State | None = None) -> None:
    """A fresh optimizer and schedule over the phase's parameter groups (or, resuming, the saved ones), then its
    epochs, the state saved after each."""
    if phase.setup is not None:
        phase.setup(run.recipe.model)
    groups = trainable_groups(run.recipe.model, phase, run.outcome.lr)
    kept = bool(run.cfg.train.cycles) and run.optimizer is not None and same_parameters(run.optimizer, groups)
    optimizer = run.optimizer if kept else make_optimizer(run.cfg.train, groups)
    run.optimizer = optimizer
    starts = batch_starts(len(run.splits.train), run.cfg.train.batch_size, run.cfg.train.drop_last)
    if run.cfg.train.cycles:
        schedule = OneCycles(optimizer, phase_cycles(run, phase, len(starts)))
    else:
        schedule = make_schedule(run.cfg.train, optimizer, len(starts), phase.epochs)
    if state is not None:
        load_stepper_state(state["stepper"], optimizer, schedule, run.step.scaler)
    run.compile_pending = run.step.forward is not run.recipe.model
    for done in range(state["phase_done"] if state is not None else 0, phase.epochs):
        if run.out_of_time():
            break
        run.epoch += 1
        train_epoch(run, phase, optimizer, schedule, starts)
        if run.choice_pending and run.outcome.history:
            choose_step(run, phase, starts)
        if run.resume is not None:
            run.resume.save(epoch_state(run, done + 1, optimizer, schedule))


def phase_cycles(run: Run, phase: Phase, steps_per_epoch: int) -> list[tuple[int, list[float]]]:
    """The ``train.cycles`` a phase spans, as (steps, the phase's group peak LRs at the cycle's LR); the phase must
    begin and end on cycle boundaries (``phase_epochs`` builds phases that do)."""
    phases = run.recipe.phases
    begin = sum(p.epochs for p in phases[: phases.index(phase)])
    end, at, spanned = begin + phase.epochs, 0, []
    for cycle in run.cfg.train.cycles:
        if begin <= at and at + cycle.epochs <= end:
            lr = cycle.lr if cycle.lr is not None else float(run.outcome.lr)
            peaks = [g["lr"] for g in phase_groups(run.recipe.model, phase, lr)]
            spanned.append((cycle.epochs * steps_per_epoch, peaks))
        at += cycle.epochs
    if sum(steps for steps, _ in spanned) != phase.epochs * steps_per_epoch:
        raise CellFailure(f"phase {phase.name} (epochs {begin + 1}-{end}) does not begin and end on train.cycles")
    return spanned


def training_left(run: Run) -> float:
    """Seconds of training the cell has left, at its last epoch's pace (within ``train.budget_seconds``)."""
    cfg, outcome = run.cfg.train, run.outcome
    remaining = outcome.history[-1]["seconds"] * (cfg.epochs - run.epoch)
    if cfg.budget_seconds is not None:
        remaining = min(remaining, cfg.budget_seconds - outcome.train_seconds)
    return max(0.0, remaining)


def log_epoch(run: Run, images: int, seconds: float) -> None:
    """One line per finished epoch: what a log file shows of a long cell (a terminal also shows the step bar)."""
    record, left = run.outcome.history[-1], training_left(run)
    rate = f", {images / seconds:,.0f} img/s" if seconds > 0 else ""
    log.info(
        "%s: epoch %d/%d, phase %s: train loss %.5g, test MSE %.5g%s; ~%s of training left",
        run.desc, run.epoch, run.cfg.train.epochs, record["phase"], record["train_loss"], record["test_mse"], rate,
        f"{left / 60:.0f} min" if left >= 90 else f"{left:.0f} s",
    )  # fmt: skip


def choose_step(run: Run, phase: Phase, starts: list[int]) -> None:
    """``train.compile: auto``, after the first epoch (of this process): compile the rest of the cell where that
    is faster and the rest is long enough to repay it (``step_choice``); the choice and the probe's numbers go
    into the outcome."""
    run.choice_pending = False
    cfg, outcome, remaining = run.cfg.train, run.outcome, training_left(run)
    n = len(run.splits.train)
    sizes = list(dict.fromkeys([min(cfg.batch_size, n), n - starts[-1]]))  # a full batch, then the trailing one
    later_phases = len(run.recipe.phases) - 1 - run.recipe.phases.index(phase)
    choice = choose(run.recipe.model, probe_step(run, phase), sizes, run.device, remaining, later_phases)
    log.log(logging.INFO if choice.probe else logging.DEBUG, "%s: train.compile auto: %s", run.desc, choice.reason)
    if choice.probe is not None:
        outcome.compile_speedup, outcome.probe_seconds = choice.probe.speedup, choice.probe.seconds
        outcome.compile_seconds = choice.probe.compile_seconds
    if choice.forward is not None:
        run.step.forward, outcome.step_mode = choice.forward, "compiled"


def probe_step(run: Run, phase: Phase) -> ProbeStep:
    """One training step of ``phase`` through a given forward module, on the probe's own batches, optimizer and
    gradient scaler (the run's generator, optimizer state and scaler stay untouched)."""
    optimizer = make_optimizer(run.cfg.train, trainable_groups(run.recipe.model, phase, float(run.outcome.lr)))
    probe = dataclasses.replace(run, gen=torch.Generator(device=run.device).manual_seed(PROBE_SEED))
    own = run.step.fresh()

    def step(forward: nn.Module, size: int) -> None:
        idx = torch.randint(len(run.splits.train), (size,), generator=probe.gen, device=run.device)
        dataclasses.replace(own, forward=forward)(optimizer, *probe.batch(run.splits.train[idx], phase.image_size))

    return step


def epoch_state(run: Run, phase_done: int, optimizer: torch.optim.Optimizer, schedule: Schedule | None) -> State:
    """Everything an interrupted run needs to go on after this epoch as if it had not stopped."""
    return {
        "phase_index": run.phase_index,
        "phase_done": phase_done,
        "epoch": run.epoch,
        "model": run.recipe.model.state_dict(),
        "loss": module_state(run.step.loss_fn),
        "stepper": stepper_state(optimizer, schedule, run.step.scaler),
        "rng": rng_state(run.gen),
        "outcome": dataclasses.asdict(run.outcome),
        "best_val": run.best_val,
        "best_state": run.best_state,
    }


def restore(run: Run, state: State) -> None:
    """Put a saved epoch state back (the phase's optimizer and schedule follow in ``train_phase``)."""
    run.recipe.model.load_state_dict(state["model"])
    if state["loss"] is not None:
        run.step.loss_fn.load_state_dict(state["loss"])
    set_rng_state(run.gen, state["rng"])
    run.outcome = TrainOutcome(**state["outcome"])
    run.outcome.resumed_at.append(state["epoch"])
    run.outcome.step_mode = "compiled" if run.step.forward is not run.recipe.model else "eager"  # this process's
    run.epoch, run.phase_index = state["epoch"], state["phase_index"]
    run.best_val, run.best_state = state["best_val"], state["best_state"]


def train_epoch(
    run: Run,
    phase: Phase,
    optimizer: torch.optim.Optimizer,
    schedule: torch.optim.lr_scheduler.LRScheduler | None,
    starts: list[int],
) -> None:
    """One shuffled pass over the training split (timed), then the epoch's record and hook.

    The loss, and the first step whose loss is not finite, are kept on the device and read once, after the pass:
    no host sync inside the loop (under ``train.budget_seconds`` the clock is read before each step). With
    ``train.compile`` the phase's first step (which compiles) is timed apart, as ``compile_seconds``.
    """
    cfg, train_images, size = run.cfg, run.splits.train, phase.image_size
    run.recipe.model.train()
    total = torch.zeros((), device=run.device)
    first_bad = torch.zeros(2, device=run.device)  # (step, loss) of the first non-finite loss, kept on the device
    perm = torch.randperm(len(train_images), generator=run.gen, device=run.device)
    numbered = list(enumerate((perm[i : i + cfg.train.batch_size] for i in starts), 1))
    steps_before = run.outcome.steps

    def step(number: int, idx: torch.Tensor) -> None:
        nonlocal total
        loss = run.step(optimizer, *run.batch(train_images[idx], size), schedule)
        total += loss * len(idx)
        new_bad = (first_bad[0] == 0) & ~torch.isfinite(loss)
        first_bad.copy_(torch.where(new_bad, torch.stack([loss.new_tensor(float(number)), loss]), first_bad))
        run.outcome.steps += 1

    compiled = 0
    if run.compile_pending and numbered:
        number, idx = numbered.pop(0)
        with timed(run.device) as compile_timer:
            step(number, idx)
        run.outcome.compile_seconds = (run.outcome.compile_seconds or 0.0) + compile_timer.seconds
        run.compile_pending = False
        compiled = len(idx)  # not a training-speed step; its loss still counts
    seen = 0
    with timed(run.device) as timer:
        bar = tqdm(
            numbered, desc=f"{run.desc} {phase.name} ep {run.epoch}/{cfg.train.epochs}", leave=False, disable=None
        )
        for number, idx in bar:
            if run.out_of_time(timer):
                break
            step(number, idx)
            seen += len(idx)
    bad_step, bad_loss = first_bad.tolist()
    if bad_step:
        check_finite(bad_loss, "train loss", run.epoch, int(bad_step))
    steps = run.outcome.steps - steps_before
    run.outcome.train_seconds += timer.seconds
    run.outcome.images_seen += seen
    run.outcome.epochs_trained += steps / len(starts) if starts else 0.0
    if steps:  # a budget can end the phase before an epoch's first step
        record_epoch(run, phase, optimizer, total.item() / (seen + compiled), timer.seconds)
        log_epoch(run, seen, timer.seconds)


def record_epoch(run: Run, phase: Phase, optimizer: torch.optim.Optimizer, train_loss: float, seconds: float) -> None:
    """Append the epoch's history row, keep the best-validation weights, call the epoch hook."""
    model = run.recipe.model
    test_loss, test_mse = mean_losses(model, run.splits.test, run, phase.image_size)
    if phase.image_size is not None:  # a reduced-size phase: the MSE at full size, comparable across techniques
        test_mse = mean_losses(model, run.splits.test, run, None)[1]
    record = {
        "epoch": run.epoch,
        "phase": phase.name,
        "image_size": phase.image_size or run.splits.train.shape[-1],  # the side this epoch trained at
        "lr": optimizer.param_groups[-1]["lr"],
        "train_loss": train_loss,
        "test_loss": test_loss,
        "test_mse": test_mse,
        "seconds": seconds,
    }
    check_finite(record["test_loss"], "test loss", run.epoch)
    if run.splits.val is not None:
        record["val_loss"] = mean_losses(model, run.splits.val, run, phase.image_size)[0]
        check_finite(record["val_loss"], "validation loss", run.epoch)
        if record["val_loss"] < run.best_val:
            run.best_val, run.outcome.best_epoch = record["val_loss"], run.epoch
            run.best_state = copy.deepcopy(model.state_dict())
    run.outcome.history.append(record)
    if run.on_epoch_end is not None:
        run.on_epoch_end(run.epoch, model)


def check_finite(value: float, what: str, epoch: int, step: int | None = None) -> None:
    """Stop the cell with :class:`CellFailure` naming the epoch (and step) where ``value`` is NaN or infinite."""
    if not math.isfinite(value):
        where = f"epoch {epoch}" + (f", step {step}" if step is not None else "")
        raise CellFailure(f"{what} is {value} at {where} (diverged: lower train.lr)")


@torch.no_grad()
def mean_losses(model: nn.Module, images: torch.Tensor, run: Run, size: int | None) -> tuple[float, float]:
    """Image-weighted means over a split, in eval mode: the run's own loss and the pixel MSE of the clamped output
    (forward under the run's autocast, both in fp32)."""
    model.eval()
    loss = torch.zeros((), device=run.device)
    mse = torch.zeros((), device=run.device)
    for inputs, target in eval_batches(images, run.cfg, run.normalizer, size):
        with autocast(run.step.precision, run.device):
            output = model(inputs).float()
            loss += run.step.loss_fn(output.clamp(0, 1) if run.step.clamp else output, target) * len(target)
        mse += torch.mean((output.clamp(0, 1) - target) ** 2) * len(target)
    return loss.item() / len(images), mse.item() / len(images)


def finish_run(run: Run) -> TrainOutcome:
    """Unfreeze every parameter, restore the best-validation weights, leave the model in eval mode."""
    model = run.recipe.model
    for p in model.parameters():
        p.requires_grad_(True)
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    model.eval()
    return run.outcome
