"""Benchmark: one sweep of small digits cells through the local executor and through Ray, side by side.

    python -m aebench.bench.executors [--cells 8] [--epochs 5] [--repeats 2] [--max-parallel 2]

Both run in this process, in alternating order, each into a fresh results folder (so both train the
downstream classifier). Ray's start and its workers' first imports are reported apart from the warm runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from aebench.execution.ray_executor import RayExecutor, import_ray
from aebench.execution.runner import Executor, LocalExecutor, run_experiment
from aebench.experiment import ExperimentConfig, parse_experiment


def sweep(cells: int, epochs: int) -> ExperimentConfig:
    """``cells`` baseline cells (one per seed) on the full digits training split."""
    raw = {
        "name": "executor-bench",
        "datasets": ["digits"],
        "techniques": ["baseline"],
        "seeds": list(range(cells)),
        "train": {"epochs": epochs, "batch_size": 64, "lr": 3.0e-3},
        "model": {"latent": 16},
        "classifier": {"epochs": 1},
    }
    return parse_experiment(raw, "executor-bench")


def wall_seconds(config: ExperimentConfig, executor: Executor, root: Path, threads: int | None = None) -> float:
    """Seconds for the whole sweep into a fresh folder under ``root``; ``threads`` sets this process's torch threads."""
    out = Path(tempfile.mkdtemp(dir=root))
    default = torch.get_num_threads()
    torch.set_num_threads(threads or default)
    start = time.perf_counter()
    try:
        rows = run_experiment(config, out, root / "data", "cpu", executor)
    finally:
        torch.set_num_threads(default)
    seconds = time.perf_counter() - start
    if [r["status"] for r in rows] != ["ok"] * len(config.cells()):
        raise RuntimeError(f"a benchmark cell did not finish ok: {[r['reason'] for r in rows]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-parallel", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    ray = import_ray()
    config = sweep(args.cells, args.epochs)
    remote = RayExecutor(max_parallel=args.max_parallel)
    threads = torch.get_num_threads()
    variants: dict[str, tuple[Executor, int | None]] = {
        f"local ({threads} threads)": (LocalExecutor(), None),
        "local (1 thread)": (LocalExecutor(), 1),
        f"ray ({args.max_parallel} at once, {remote.resources().cpus} thread each)": (remote, None),
    }
    print(f"{args.cells} digits baseline cells x {args.epochs} epochs; {os.cpu_count()} cores; load {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        remote.connect(ray)
        print(f"ray start: {time.perf_counter() - start:.1f} s")
        print(f"ray first sweep (workers start, import torch): {wall_seconds(config, remote, root):.1f} s")
        times: dict[str, list[float]] = {name: [] for name in variants}
        for repeat in range(args.repeats):
            names = list(variants)[:: 1 if repeat % 2 == 0 else -1]
            for name in names:
                executor, local_threads = variants[name]
                times[name].append(wall_seconds(config, executor, root, local_threads))
                print(f"repeat {repeat + 1}: {name}: {times[name][-1]:.1f} s", flush=True)
        ray.shutdown()
    ray_mean = statistics.mean(times[list(variants)[-1]])
    for name, values in times.items():
        mean = statistics.mean(values)
        print(f"{name}: mean {mean:.1f} s over {len(values)}; / ray = {mean / ray_mean:.2f}")


if __name__ == "__main__":
    main()
