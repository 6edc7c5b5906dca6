"""Checks run before any training: every dataset loads and is valid, and every cell's model suits its images."""

from __future__ import annotations

import torch

from aebench.config import CellConfig
from aebench.data import DatasetCache
from aebench.errors import UserError
from aebench.techniques import build_recipe
from aebench.training.batches import batch_starts
from aebench.training.recipe import BuildContext


def preflight(cells: list[CellConfig], data: DatasetCache) -> None:
    """Load each dataset once (format checks live in the readers), then check each distinct cell setting:
    enough training images for a step, and a model that builds and runs at every image size it trains at."""
    for name in dict.fromkeys(c.source for c in cells):
        data.raw(name)
    prepared: dict[tuple[str, str], torch.Tensor] = {}
    seen = set()
    for cell in cells:
        key = (cell.source, cell.technique, repr((cell.data, cell.model, cell.params, cell.train)))
        if key not in seen:
            seen.add(key)
            data_key = (cell.source, repr(cell.data))
            if data_key not in prepared:
                prepared[data_key] = data.prepared(cell.source, cell.data).x_train
            check_cell(cell, prepared[data_key])


def check_cell(cell: CellConfig, train_images: torch.Tensor) -> None:
    """A UserError naming the setting when the cell could not train a single step or its model rejects its size;
    the model is built as the run builds it (the same context, normaliser statistics included), on no memory."""
    n_train = len(train_images) - (
        round(len(train_images) * cell.train.validation_fraction) if cell.train.validation_fraction else 0
    )
    if not batch_starts(n_train, cell.train.batch_size, cell.train.drop_last):
        raise UserError(
            f"{cell.technique} on {cell.dataset}: {n_train} training images give no batch of "
            f"{cell.train.batch_size if cell.train.drop_last else 2} or more "
            "(raise data.limit_train, lower train.validation_fraction)"
        )
    ctx = BuildContext.for_cell(cell, train_images, load_weights=False)
    size, channels = ctx.image_size, ctx.in_channels
    with torch.device("meta"):  # shapes only: no memory, no weights, no time
        try:
            recipe = build_recipe(cell.technique, ctx)
        except UserError:
            raise
        except ValueError as exc:  # a model's own size check (e.g. a side not divisible by 4)
            raise size_error(cell, size, exc) from None
        except Exception:  # anything else (weights unavailable, a broken technique) is the cell's to record
            return
        for phase in recipe.phases or [None]:
            side = (phase and phase.image_size) or size
            try:
                recipe.model(torch.zeros(2, channels, side, side))
            except (ValueError, RuntimeError) as exc:  # shapes that do not fit the layers
                raise size_error(cell, side, exc) from None


def size_error(cell: CellConfig, size: int, exc: Exception) -> UserError:
    """The one line saying which cell's image size its model cannot use, and the model's reason."""
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return UserError(
        f"{cell.technique} on {cell.dataset}: image size {size} (data.image_size) does not suit this model: {reason}"
    )
