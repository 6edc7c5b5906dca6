"""Give an experiment the finished cells another experiment already computed with the very same settings.

Two experiments can define one cell twice: the ablation's arm at the study's settings is `experiments/mnist.yaml`'s
baseline, seed for seed. A cell of EXPERIMENT that, renamed to an ``ok`` row's experiment and sweep point, has that
row's config hash (every other setting equal) gets the row and its cell files (history, samples) in TO, under
EXPERIMENT's cell and hash; the runner then counts it done. Every metric, time and per-epoch record is the source's.

Usage, from the repository root:
``python scripts/share_cells.py FROM EXPERIMENT.yaml TO [--set KEY=VALUE ...]``
(for example ``report/results/mnist experiments/mnist-ablation.yaml report/results/mnist-ablation``); it prints
each cell it shares and, a second time, nothing.
"""

from __future__ import annotations

import argparse
import shutil
from dataclasses import replace
from pathlib import Path

from aebench.config import dump_cell
from aebench.experiment import load_experiment
from aebench.files import write_text
from aebench.results.schema import cell_folder
from aebench.results.store import append_row, cell_key, finished_keys, read_rows


def share(source: Path, experiment: Path, target: Path, sets: list[str]) -> list[str]:
    """Copy ``source``'s finished cells that ``experiment`` defines too into ``target``; one line per cell copied. A
    cell is the same where ``experiment``'s, renamed to the source row's experiment and sweep point, has its hash."""
    cells = load_experiment(experiment, sets).cells()
    done = finished_keys(read_rows(target)) if (target / "results.jsonl").is_file() else set()
    copied = []
    for row in (r for r in read_rows(source) if r["status"] == "ok"):
        mine = (c for c in cells if (c.dataset, c.technique, c.seed) == (row["dataset"], row["technique"], row["seed"]))
        theirs = {"experiment": row["experiment"], "axes": row.get("axes") or {}}
        cell = next((c for c in mine if replace(c, **theirs).config_hash == row["config_hash"]), None)
        if cell is None:
            continue
        folder = cell_folder(source, row["dataset"], row["technique"], row["seed"], row["config_hash"])
        shared = {**row, "experiment": cell.experiment, "axes": cell.axes}
        shared.update(config_hash=cell.config_hash, recipe_hash=cell.recipe_hash)
        if cell_key(shared) in done:
            continue
        into = cell_folder(target, cell.dataset, cell.technique, cell.seed, cell.config_hash)
        into.mkdir(parents=True, exist_ok=True)
        for name in ("history.json", "samples.npz"):
            if (folder / name).is_file():
                shutil.copyfile(folder / name, into / name)
        write_text(into / "config.yaml", dump_cell(cell))
        append_row(target, shared)
        copied.append(f"{row['technique']} seed {row['seed']} [{row['config_hash']}] -> {into}")
    return copied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("experiment", type=Path)
    parser.add_argument("target", type=Path)
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    for line in share(args.source, args.experiment, args.target, args.sets):
        print(line)


if __name__ == "__main__":
    main()
