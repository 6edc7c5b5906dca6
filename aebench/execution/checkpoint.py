"""Checkpoints that rebuild their model: technique name, build context (plain data) and weights (tensors).

They are read with ``torch.load(weights_only=True)``: a crafted checkpoint cannot run code.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import torch
from torch import nn

from aebench.config import TrainConfig, build, to_plain
from aebench.data.pixels import Normalizer
from aebench.errors import UserError
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


def context_from_plain(technique: str, plain: dict[str, Any]) -> BuildContext:
    """Inverse of ``to_plain`` for a BuildContext."""
    info = get_technique(technique)
    fields = {**plain}
    fields["train"] = build(TrainConfig, plain["train"], "train", "checkpoint")
    fields["params"] = build(info.params, plain["params"], "params", "checkpoint")
    fields["input_mean"], fields["input_std"] = tuple(plain["input_mean"]), tuple(plain["input_std"])
    return BuildContext(**fields)


def load_checkpoint(path: Path, device: str | torch.device = "cpu") -> tuple[nn.Module, Normalizer]:
    """The model in eval mode and the normaliser its inputs expect."""
    try:
        with open_zip(path, CHECKPOINT_LIMIT, follow=True) as fh:  # sizes checked before torch allocates them
            payload = torch.load(fh, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise UserError(f"{path}: no such checkpoint") from None
    except UserError:
        raise
    except Exception as exc:  # damaged file, or a pickle holding anything but tensors and plain data
        raise UserError(f"{path}: not a loadable aebench checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or not {"technique", "context", "state_dict"} <= payload.keys():
        raise UserError(f"{path}: not an aebench checkpoint (expected technique, context and state_dict)")
    # the saved weights replace any pretrained ones, so nothing is fetched (works offline)
    ctx = dataclasses.replace(context_from_plain(payload["technique"], payload["context"]), load_weights=False)
    model = build_recipe(payload["technique"], ctx).model
    model.load_state_dict(payload["state_dict"])
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
