"""How much memory one cell needs on a CPU, estimated before it runs (so N parallel cells fit the machine).

An estimate, not a measurement: the worker's runtime, the dataset (raw and prepared, uint8), a closed-form
fit's float copies, the weights with their gradients and Adam moments, and the layer outputs a training step
keeps (from a forward pass on the meta device: no memory, no weights, no time).
"""

from __future__ import annotations

import torch
from torch import nn

from aebench.config import CellConfig
from aebench.data import ImageData
from aebench.techniques import build_recipe
from aebench.training.recipe import BuildContext

MB = 2**20
RUNTIME_MB = 800.0  # a worker with torch and aebench imported (~480 MB private measured), the classifier, slack
FLOAT_BYTES = 4
OPTIMIZER_COPIES = 4  # weights, gradients, two Adam moments
FIT_COPIES = 3  # a closed-form fit (PCA): the split as floats, centred, and its factors
ACTIVATION_COPIES = 3  # each layer's output kept for backward, its gradient, an autocast copy


def cell_memory_mb(cell: CellConfig, raw: ImageData) -> float:
    """Estimated peak resident memory (MB) of ``cell`` on its raw dataset ``raw``, run on a CPU."""
    n_train = min(len(raw.x_train), cell.data.limit_train or len(raw.x_train))
    n_test = min(len(raw.x_test), cell.data.limit_test or len(raw.x_test))
    size = cell.data.image_size or raw.image_size
    channels = cell.data.channels or raw.channels
    pixels = channels * size * size
    raw_bytes = (len(raw.x_train) + len(raw.x_test)) * raw.x_train[0].numel()
    data = raw_bytes + 2 * (n_train + n_test) * pixels  # the raw split, the cell's prepared copy and its split
    shape_only = torch.zeros(1, channels, size, size, dtype=torch.uint8)  # the context needs the images' shape
    ctx = BuildContext.for_cell(cell, shape_only, load_weights=False)
    with torch.device("meta"):
        try:
            recipe = build_recipe(cell.technique, ctx)
            steps = training_bytes(recipe.model, cell.train.batch_size, channels, size)
        except Exception:  # a cell that cannot build or run fails or skips on its own, before it needs memory
            return RUNTIME_MB + data / MB
    loss = parameter_count(recipe.loss) * FLOAT_BYTES if isinstance(recipe.loss, nn.Module) else 0
    fit = n_train * pixels * FLOAT_BYTES * FIT_COPIES if recipe.fit is not None else 0
    return RUNTIME_MB + (data + loss + fit + steps) / MB


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def training_bytes(model: nn.Module, batch: int, channels: int, size: int) -> int:
    """Weights with their optimizer copies, plus every leaf layer's output at ``batch`` (on the meta device)."""
    outputs = []

    def keep(module: nn.Module, inputs: object, output: object) -> None:
        if isinstance(output, torch.Tensor):
            outputs.append(output.numel())

    leaves = [m for m in model.modules() if not list(m.children())]
    hooks = [m.register_forward_hook(keep) for m in leaves]
    try:
        model(torch.zeros(batch, channels, size, size))
    finally:
        for hook in hooks:
            hook.remove()
    weights = parameter_count(model) * FLOAT_BYTES * OPTIMIZER_COPIES
    return weights + sum(outputs) * FLOAT_BYTES * ACTIVATION_COPIES
