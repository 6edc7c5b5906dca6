"""Shared fixtures: datasets written in their exact on-disk formats, tiny experiment files, offline guards."""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ["HF_HUB_OFFLINE"] = "1"  # never let timm/torchvision weights reach for the network in tests
# Tiny tensors gain nothing from intra-op threads, and on a busy machine OpenMP threads contending for
# the cores make a test 10x slower; subprocesses inherit the variable.
os.environ["OMP_NUM_THREADS"] = "1"

import numpy as np
import pytest
import torch
import yaml
from helpers import TINY, write_idx

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def short_cost(monkeypatch: pytest.MonkeyPatch) -> None:
    """``aebench run``'s cost measurement (``DEFAULT_COST``) at a fraction of a second per technique: the tests
    check what it records, never how fast anything is."""
    from aebench.execution import cost
    from aebench.execution.timer import TimerSettings

    timer = TimerSettings(max_seconds=0.05, min_pairs=2, warmup=1, round_seconds=0.001)
    monkeypatch.setattr(cost, "DEFAULT_COST", cost.CostSettings(timer, images=64))


@pytest.fixture
def idx_files() -> Callable[..., dict[str, np.ndarray]]:
    """``make(folder, gz=False, n_train=12, n_test=5, seed=0)`` writes the four MNIST-format files; returns the arrays."""

    def make(
        folder: Path, gz: bool = False, n_train: int = 12, n_test: int = 5, seed: int = 0
    ) -> dict[str, np.ndarray]:
        rng = np.random.default_rng(seed)
        arrays = {
            "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
            "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
            "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
            "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
        }
        for stem, array in arrays.items():
            write_idx(folder / (stem + (".gz" if gz else "")), array)
        return arrays

    return make


@pytest.fixture
def cifar_files() -> Callable[..., dict[str, dict[bytes, Any]]]:
    """``make(root, per_batch=4)`` writes cifar-10-batches-py/data_batch_1..5 and test_batch; returns the dicts."""

    def make(root: Path, per_batch: int = 4) -> dict[str, dict[bytes, Any]]:
        folder = root / "cifar-10-batches-py"
        folder.mkdir(parents=True)
        rng = np.random.default_rng(0)
        batches = {}
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            batch = {
                b"batch_label": name.encode(),
                b"labels": [int(v) for v in rng.integers(0, 10, per_batch)],
                b"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                b"filenames": [f"{name}_{i}.png".encode() for i in range(per_batch)],
            }
            with open(folder / name, "wb") as fh:
                pickle.dump(batch, fh, protocol=2)
            batches[name] = batch
        return batches

    return make


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every download host is unreachable (the tests never touch the network)."""
    monkeypatch.setattr("aebench.data.sources.host_reachable", lambda url, timeout=3.0: False)


@pytest.fixture
def experiment_file(tmp_path: Path) -> Callable[..., Path]:
    """``make(text_or_mapping=None, name="exp.yaml", **top_level)`` writes an experiment file (default: TINY)."""

    def make(content: str | dict[str, Any] | None = None, name: str = "exp.yaml", **top_level: Any) -> Path:
        path = tmp_path / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_text(yaml.safe_dump({**(content or TINY), **top_level}, sort_keys=False))
        return path

    return make
