"""Shared test helpers: repository paths, the tiny experiment, on-disk format writers, cell folder lookup."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from aebench.results.schema import cell_folder

if TYPE_CHECKING:
    import torch

    from aebench.config import CellConfig
    from aebench.training.recipe import Recipe

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "experiments" / "demo.yaml"

# A run of a few seconds on CPU: digits, small subsets, one epoch, a small latent.
TINY: dict[str, Any] = {
    "name": "tiny",
    "datasets": ["digits"],
    "techniques": ["baseline"],
    "seeds": [0],
    "train": {"epochs": 1, "batch_size": 32, "lr": 3.0e-3},
    "data": {"limit_train": 128, "limit_test": 48},
    "model": {"latent": 8},
    "classifier": {"epochs": 1, "batch_size": 32},
}


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write an unsigned-byte IDX file (MNIST format); gzipped when the name ends in ``.gz``."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(payload))
    else:
        path.write_bytes(payload)


def cell_dir(out: Path, technique: str, seed: int = 0, dataset: str = "digits") -> Path:
    """The folder of a cell that ``out/results.jsonl`` records (its latest row), as the runner names it."""
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    row = [r for r in rows if (r["dataset"], r["technique"], r["seed"]) == (dataset, technique, seed)][-1]
    return cell_folder(out, dataset, technique, seed, row["config_hash"])


def built(cell: CellConfig, images: torch.Tensor | tuple[int, int]) -> Recipe:
    """The cell's recipe, built as the runner builds it, for these uint8 training images (or blank images of
    (channels, side))."""
    import torch

    from aebench.techniques import build_recipe
    from aebench.training.recipe import BuildContext

    if isinstance(images, tuple):
        channels, side = images
        images = torch.zeros(2, channels, side, side, dtype=torch.uint8)
    return build_recipe(cell.technique, BuildContext.for_cell(cell, images), cell.seed)


def tiny_cell(technique: str, params: Any, epochs: int = 1, batch_size: int = 8, lr: float = 1e-2) -> CellConfig:
    """A digits cell of ``technique`` with these parameters: latent 8, no input normalisation."""
    from aebench.config import CellConfig, ClassifierConfig, DataConfig, ModelConfig, TrainConfig

    train = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr)
    return CellConfig("t", "digits", technique, 0, train, DataConfig(normalize="none"), ModelConfig(latent=8),
                      ClassifierConfig(), params)  # fmt: skip


def tiny_sweep(folder: Path, name: str, **changes: Any) -> Path:
    """TINY, changed at top level, written as the experiment file ``folder/<name>.yaml``."""
    import yaml

    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({**TINY, "name": name, **changes}, sort_keys=False))
    return path


def compared(rows: list[dict[str, Any]], fields: list[str]) -> list[dict[str, Any]]:
    """These fields of each row, ordered by technique and seed: what two executors must agree on."""
    return sorted(({k: r.get(k) for k in fields} for r in rows), key=lambda r: (r["technique"], r["seed"]))


def children_running(marker: str) -> list[Any]:
    """This test process's descendants whose command line contains ``marker`` (psutil processes)."""
    import psutil

    found = []
    for proc in psutil.Process().children(recursive=True):
        try:
            if marker in " ".join(proc.cmdline()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


def killing(find: Any, count: int, body: Any, ready: Any = lambda: True) -> tuple[Any, list[int]]:
    """``body()`` while a thread kills (SIGKILL) the first ``count`` distinct processes that ``find()`` lists, each
    once ``ready()`` holds; returns the body's result and the killed pids."""
    import threading
    import time

    killed: list[int] = []
    stop = threading.Event()

    def kill() -> None:
        while len(killed) < count and not stop.is_set():
            if ready():
                for proc in find():
                    if proc.pid not in killed:
                        proc.kill()
                        killed.append(proc.pid)
                        break
            time.sleep(0.01)

    killer = threading.Thread(target=kill)
    killer.start()
    try:
        return body(), killed
    finally:
        stop.set()
        killer.join()


class Interrupt:
    """A tracker that presses Ctrl-C once the first row is written."""

    def log_cell(self, result: Any) -> None:
        raise KeyboardInterrupt


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line a refused command printed (asserting it is one ``aebench: error:`` line)."""
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aebench: error: "), err
    return err[0]
