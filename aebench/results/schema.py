"""The results schema, one source of truth: row fields, the metric specs, and where a cell's files live."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from aebench.config import SAFE_NAME

RESULTS_FILE = "results.jsonl"
CELL_KEYS = ["experiment", "dataset", "technique", "seed"]
DONE_STATUSES = ("ok", "skipped")
METRIC_VERSION = 2  # written into every row; what each version computes:
METRIC_DEFINITIONS = {
    1: "SSIM by aebench's own code over valid (unpadded) 11x11 Gaussian windows (sigma 1.5), K = (0.01, 0.03)",
    2: "SSIM by torchmetrics: an 11x11 Gaussian window (sigma 1.5), K = (0.01, 0.03), each image padded by 5 px of "
    "reflection and the SSIM map averaged over every pixel",
}  # MAE, MSE, PSNR (per image, peak 1, capped at 100 dB) and accuracy are the same in every version
SAFE_HASH = re.compile(r"[0-9A-Za-z]{1,64}")  # config hashes: 12 hex digits when aebench writes them


@dataclass(frozen=True)
class MetricSpec:
    """A reported number: its row field, labels for text and LaTeX, which way is better, and its printed digits."""

    name: str
    label: str
    latex: str
    lower_is_better: bool
    digits: int

    def title(self) -> str:
        """The label with the direction, for figure axes."""
        return f"{self.label} ({'lower' if self.lower_is_better else 'higher'} is better)"


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("mae", "MAE", "MAE", True, 5),
    MetricSpec("mse", "MSE", "MSE", True, 6),
    MetricSpec("psnr", "PSNR (dB)", "PSNR (dB)", False, 2),
    MetricSpec("ssim", "SSIM", "SSIM", False, 4),
    MetricSpec("accuracy", "Accuracy", "Accuracy", False, 4),
    MetricSpec("accuracy_clean", "Accuracy (clean)", "Accuracy (clean)", False, 4),
    MetricSpec("train_seconds", "Train time (s)", r"Train time (s)", True, 1),
    MetricSpec("images_per_second", "Images/s", r"Images/s", False, 0),
)
SPECS: dict[str, MetricSpec] = {m.name: m for m in METRICS}
QUALITY = ("mae", "mse", "psnr", "ssim", "accuracy")  # the reconstruction-quality metrics, in table order

ROW_FIELDS = [
    *CELL_KEYS, "status", "reason",
    "mae", "mse", "psnr", "ssim", "accuracy", "accuracy_clean",
    "train_seconds", "eval_seconds", "images_per_second", "epochs", "params", "peak_memory_mb",
    "device", "precision", "n_train", "n_test", "torch_version", "git_commit", "config_hash",
]  # fmt: skip
EXTRA_FIELDS = [
    "mse_input",
    "compile_seconds",
    "step_mode",
    "compile_speedup",
    "probe_seconds",
    "classifier_seconds",
    "cell_seconds",
    "threads",
    "parallel_cells",
    "lr",
    "best_epoch",
    "budget_seconds",
    "epochs_trained",
    "corruption",
    "aebench_version",
    "finished_at",
    "role",
    "own_loss",
    "needs_weights",
    "channels",
    "image_size",
    "latent",
    "native_pixels",
    "metric_version",
    "classes",
    "mse_mean_image",
    "output_spread",
    "resumed_at",  # epochs after which an interrupted cell was resumed (train_seconds sums the pieces); null if never
    "recipe_hash",  # config_hash with the seed left out: one per config across its seeds; absent in older rows
    "dataset_source",  # an image folder's folder:PATH as the experiment names it (dataset: the folder's name)
    "measured",  # what the technique measured while training, e.g. {"first_step_pixel": ...}; null for most
    "axes",  # the cell's sweep point: {axis key: value}, e.g. {"model.latent": 32} (AXES_FIELD); {} without one
    "classifier",  # the downstream classifier in words: 'cnn, 10 epochs, lr 0.002, batch 128'
    "settings",  # the cell's settings as flat dotted keys: {"train.lr": 0.001, "data.augment": true, ...}
]  # written, not required


# What each known field holds (None always allowed): a row breaking this is skipped with a warning.
NUMBER_FIELDS = (
    *(m.name for m in METRICS), "eval_seconds", "epochs", "params", "peak_memory_mb", "n_train", "n_test",
    "mse_input", "compile_seconds", "lr", "best_epoch", "budget_seconds", "epochs_trained",
    "channels", "image_size", "latent", "native_pixels", "metric_version", "classes", "mse_mean_image",
    "output_spread",
)  # fmt: skip
TEXT_FIELDS = (
    "reason", "device", "precision", "torch_version", "git_commit", "corruption", "aebench_version", "finished_at",
    "role", "needs_weights", "recipe_hash", "dataset_source", "classifier",
)  # fmt: skip
FLAG_FIELDS = ("own_loss",)
AXES_FIELD = "axes"
"""A row's sweep point: a JSON object mapping each axis key of the experiment's ``sweep`` (a dotted setting key as
written in the file: ``model.latent``, ``train.lr``, ``overrides.<technique>.<option>``) to the cell's value on
that axis, as resolved (``{"model.latent": 32, "train.lr": 0.001}``). ``{}`` for a cell of an experiment without
a sweep; absent (read as ``{}``) in rows written before sweeps. An axis that sets one technique's option appears
only in that technique's rows. Rows of one experiment with equal ``axes`` (and dataset) compare; the point is part
of a cell's identity (``store.cell_of``) and of its config hash."""
STATUSES = ("ok", "failed", "skipped")


def cell_folder(results: Path, dataset: str, technique: str, seed: int, config_hash: str) -> Path:
    """The folder of one cell's files (config, checkpoint, history, samples) inside a results folder; keyed by
    the config hash, so a changed config never overwrites another config's files. Names are checked, so a
    crafted row cannot point outside ``results``."""
    for name in (dataset, technique):
        if not SAFE_NAME.fullmatch(name):
            raise ValueError(f"unsafe name for a folder: {name!r}")
    return Path(results) / "cells" / dataset / technique / f"seed{seed}-{config_hash}"
