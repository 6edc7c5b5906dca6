"""Checkpoints that rebuild their model: technique name, build context (plain data) and weights (tensors).

They are read with ``torch.load(weights_only=True)``: a crafted checkpoint cannot run code.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from aebench.config import MAX_COUNT, MAX_IMAGE_SIZE, ConfigError, TrainConfig, build, to_plain
from aebench.data.pixels import Normalizer
from aebench.errors import UserError, exception_line
from aebench.files import atomic_write, open_zip
from aebench.techniques import build_recipe, get_technique
from aebench.training.recipe import BuildContext
from aebench.training.resume import State

log = logging.getLogger(__name__)

RESUME_FILE = "resume.pt"  # a cell's in-progress state; removed once its row is made, never committed
RESUME_VERSION = 1

CHECKPOINT_LIMIT = 2**32  # bytes a checkpoint may hold or declare once unzipped (ResNet-34 autoencoders: ~100 MB)


def save_checkpoint(path: Path, technique: str, ctx: BuildContext, model: nn.Module) -> None:
    """Write atomically (temp file, then rename)."""
    payload = {"technique": technique, "context": to_plain(ctx), "state_dict": dict(model.state_dict())}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


@dataclass(frozen=True)
class SavedContext:
    """A checkpoint's build context less the technique's parameters, checked as a config is (``build``: types,
    bounds, unknown keys) before any model is built from it."""

    in_channels: Literal[1, 3] = field(metadata={"help": "image channels"})
    image_size: int = field(metadata={"help": "image side in pixels", "min": 1, "max": MAX_IMAGE_SIZE})
    latent: int = field(metadata={"help": "latent size", "min": 1, "max": MAX_COUNT})
    train: TrainConfig = field(metadata={"help": "training settings"})
    layers: Literal["aebench", "study"] = field(default="aebench", metadata={"help": "model.layers"})
    input_mean: tuple[float, ...] = field(default=(0.0,), metadata={"help": "normaliser means, one a channel"})
    input_std: tuple[float, ...] = field(default=(1.0,), metadata={"help": "normaliser deviations, one a channel"})
    load_weights: bool = field(default=True, metadata={"help": "ignored: the saved weights replace pretrained ones"})


REQUIRED = [f.name for f in dataclasses.fields(SavedContext) if f.default is dataclasses.MISSING]


def context_from_plain(technique: Any, plain: Any, source: str = "checkpoint") -> BuildContext:
    """Inverse of ``to_plain`` for a BuildContext, each value checked as a config's are: a ConfigError naming
    ``source`` and the key for a missing, unknown, mistyped or out-of-range one."""
    if not isinstance(technique, str):
        raise ConfigError(f"{source}: 'technique' must be a string (got {type(technique).__name__})")
    info = get_technique(technique, f"{source}: technique")
    if not isinstance(plain, dict):
        raise ConfigError(f"{source}: 'context' must be a mapping, got {type(plain).__name__}")
    missing = [key for key in [*REQUIRED, "params"] if key not in plain]
    if missing:
        raise ConfigError(f"{source}: 'context' lacks '{missing[0]}'")
    params = build(info.params, plain["params"], "context.params", source)
    saved = build(SavedContext, {k: v for k, v in plain.items() if k != "params"}, "context", source, ("params",))
    for key in ("input_mean", "input_std"):
        if len(getattr(saved, key)) != saved.in_channels:
            raise ConfigError(f"{source}: 'context.{key}' must hold {saved.in_channels} numbers, one a channel")
    if min(saved.input_std) <= 0:
        raise ConfigError(f"{source}: 'context.input_std' must be positive (got {list(saved.input_std)})")
    shallow = {f.name: getattr(saved, f.name) for f in dataclasses.fields(saved)}
    return BuildContext(**shallow, params=params)


def rebuild(technique: str, ctx: BuildContext, weights: Any, source: str) -> nn.Module:
    """The technique's model for ``ctx`` holding ``weights``. The model is first built on the meta device (no
    memory) and its tensor shapes compared with the weights', so a context describing a larger model than the
    file holds is refused before anything is allocated: the real model costs what the checkpoint's weights do."""
    if not isinstance(weights, dict) or not all(isinstance(v, torch.Tensor) for v in weights.values()):
        raise UserError(f"{source}: 'state_dict' must map names to tensors")
    try:
        with torch.device("meta"):
            expected = {k: list(v.shape) for k, v in build_recipe(technique, ctx).model.state_dict().items()}
        found = {k: list(v.shape) for k, v in weights.items()}
        differs = next((k for k in [*expected, *found] if expected.get(k) != found.get(k)), None)
        if differs is not None:
            raise UserError(
                f"{source}: its weights do not fit the {technique} model its context describes ('{differs}': "
                f"{found.get(differs, 'missing')} in the file, {expected.get(differs, 'none')} in the model)"
            )
        model = build_recipe(technique, ctx).model
        model.load_state_dict(weights)
    except UserError:
        raise
    except Exception as exc:  # a context this technique cannot build, or weights it cannot take
        raise UserError(f"{source}: cannot rebuild its {technique} model ({exception_line(exc)})") from None
    return model


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Normalizer]:
    """The model in eval mode and the normaliser its inputs expect; a UserError (one line) for a file that is not
    an aebench checkpoint, or whose context or weights are damaged, out of bounds or do not fit each other."""
    try:
        with open_zip(path, CHECKPOINT_LIMIT, follow=True) as fh:  # sizes checked before torch allocates them
            payload = torch.load(fh, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such checkpoint") from None
    except UserError:
        raise
    except Exception as exc:  # damaged file, or a pickle holding anything but tensors and plain data
        raise UserError(f"{path}: not a loadable aebench checkpoint ({exception_line(exc)})") from None
    if not isinstance(payload, dict) or not {"technique", "context", "state_dict"} <= payload.keys():
        raise UserError(f"{path}: not an aebench checkpoint (expected technique, context and state_dict)")
    # the saved weights replace any pretrained ones, so nothing is fetched (works offline)
    ctx = dataclasses.replace(
        context_from_plain(payload["technique"], payload["context"], str(path)), load_weights=False
    )
    model = rebuild(payload["technique"], ctx, payload["state_dict"], str(path))
    return model.to(device).eval(), ctx.normalizer(device)


class ResumeFile:
    """A cell's state after its last finished epoch, in ``folder/resume.pt``, replaced atomically after every
    epoch; an interrupted cell (killed, Ctrl-C) picks it up on the next run. A state of another config or
    format, or an unreadable one, is ignored with a warning (the cell starts afresh)."""

    def __init__(self, folder: Path, config_hash: str) -> None:
        self.path = folder / RESUME_FILE
        self.config_hash = config_hash

    def load(self) -> State | None:
        if not self.path.is_file():
            return None
        try:
            with open_zip(self.path, CHECKPOINT_LIMIT) as fh:  # never through a link, sizes checked before loading
                payload = torch.load(fh, map_location="cpu", weights_only=True)
        except Exception as exc:  # a damaged or oversized file: the cell is only slower, never wrong
            log.warning("%s: unreadable (%s: %s); the cell starts afresh", self.path, type(exc).__name__, exc)
            return None
        expected = {"version": RESUME_VERSION, "config_hash": self.config_hash}
        if not isinstance(payload, dict) or any(payload.get(k) != v for k, v in expected.items()):
            log.warning("%s: saved by another config or aebench version; the cell starts afresh", self.path)
            return None
        log.info("resuming from %s after epoch %d", self.path, payload["state"]["epoch"])
        return payload["state"]

    def save(self, state: State) -> None:
        payload = {"version": RESUME_VERSION, "config_hash": self.config_hash, "state": state}
        atomic_write(self.path, lambda tmp: torch.save(payload, tmp))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)
