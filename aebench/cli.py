"""Command line: ``aebench run | report | list | bench``. Logging is configured here only."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from aebench.errors import MachineFault, UserError
from aebench.execution.options import add_execution_arguments
from aebench.files import is_machine_fault

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("aebench")
DEFAULT_RESULTS = Path("results")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="aebench", description="Benchmark autoencoder training techniques side by side."
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run an experiment file (resumes: finished cells are skipped)")
    run.add_argument("experiment", type=Path, help="experiment YAML, e.g. experiments/demo.yaml")
    run.add_argument("--out", type=Path, help="results folder (default: results/<experiment name>)")
    run.add_argument("--data-root", type=Path, help="dataset folder (default: $AEBENCH_DATA or ~/.cache/aebench/data)")
    run.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    run.add_argument(
        "--set",
        dest="sets",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, dotted (repeatable), e.g. --set train.epochs=2",
    )
    run.add_argument("--dry-run", action="store_true", help="print the cell plan and exit")
    add_execution_arguments(run)

    report = sub.add_parser("report", help="regenerate tables and figures from results (never retrains)")
    report.add_argument(
        "--results", type=Path, nargs="+", help="results folders (default: every folder under results/)"
    )
    report.add_argument("--out", type=Path, default=Path("report"), help="report folder (default: report/)")

    listing = sub.add_parser("list", help="registered techniques (with their options) and datasets (found or not)")
    listing.add_argument("--data-root", type=Path, help="dataset folder to look in (default: as for run)")
    add_bench_parser(sub)
    return parser


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="training speed vs a naive loop, FLOPs/img, fraction of peak, memory")
    bench.add_argument("--technique", default="all", help="a technique name, or all (default)")
    bench.add_argument("--dataset", help="dataset (default: the experiment's first)")
    bench.add_argument("--experiment", type=Path, default=Path("experiments/fashion.yaml"), help="settings source")
    bench.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    bench.add_argument(
        "--data-root", type=Path, help="dataset folder (default: $AEBENCH_DATA or ~/.cache/aebench/data)"
    )
    bench.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="as for run")
    bench.add_argument("--steps", type=int, default=10, help="training steps per timed round (default 10)")
    bench.add_argument("--repeats", type=int, help="interleaved timed rounds (default 5; --sweep: runs per way, 1)")
    bench.add_argument("--json", type=Path, help="also write the numbers to this JSON file")
    mode = bench.add_mutually_exclusive_group()
    mode.add_argument(
        "--sweep",
        action="store_true",
        help="the experiment's sweep, shortened, run today's way, one cell at a time and in parallel cells; "
        "plus the full experiment's wall time estimated here",
    )
    mode.add_argument(
        "--busy-core",
        action="store_true",
        help="one cell's training img/s quiet and with one core kept busy, today's default vs aebench's choice",
    )
    bench.add_argument("--sweep-images", type=int, default=4096, help="--sweep: training images per cell (4096)")
    bench.add_argument("--sweep-epochs", type=int, default=1, help="--sweep: epochs per cell (default 1)")
    bench.add_argument("--sweep-seeds", type=int, default=1, help="--sweep: the experiment's first N seeds (1)")


def cmd_list(args: argparse.Namespace) -> None:
    from aebench.data import DATASETS, default_data_root
    from aebench.techniques import TECHNIQUES

    root = args.data_root or default_data_root()
    width = max(map(len, [*TECHNIQUES, *DATASETS]))
    print("techniques (options go under overrides.<technique>.<option>):")
    for info in TECHNIQUES.values():
        print(f"  {info.name:<{width}}  {info.description}")
        for field in dataclasses.fields(info.params):
            default = field.default if field.default is not dataclasses.MISSING else field.default_factory()
            print(f"  {'':<{width}}    {field.name} = {default!r}: {field.metadata.get('help', '')}")
    print(f"datasets (data root {root}):")
    for spec in DATASETS.values():
        state = "found on disk" if spec.on_disk(root) else "needs download"
        print(f"  {spec.name:<{width}}  [{state}] {spec.description}")


def cmd_run(args: argparse.Namespace) -> None:
    from aebench.data import default_data_root
    from aebench.execution.options import make_executor
    from aebench.execution.runner import run_experiment
    from aebench.execution.tracking import make_tracker
    from aebench.experiment import load_experiment
    from aebench.files import write_text
    from aebench.results.store import cell_key, finished_keys, load_results, read_rows
    from aebench.results.summary import summary_table

    config = load_experiment(args.experiment, args.sets)
    out = args.out or DEFAULT_RESULTS / config.name
    require_device(args.device)
    if args.dry_run:
        done = finished_keys(read_rows(out)) if out.is_dir() else set()
        cells = config.cells()
        print(f"{config.name}: {len(cells)} cells -> {out / 'results.jsonl'}")
        for cell in cells:
            state = "done" if cell_key({**cell.to_dict(), "config_hash": cell.config_hash}) in done else "todo"
            print(f"  {state}  {cell.dataset:<14} {cell.technique:<22} seed {cell.seed}  [{cell.config_hash}]")
        return
    if args.data_root is not None and args.data_root.exists() and not args.data_root.is_dir():
        raise UserError(f"--data-root {args.data_root}: is a file, not a folder")
    data_root = args.data_root or default_data_root()
    executor, tracker = make_executor(args), make_tracker(args.track, out, config.name)
    run_experiment(config, out, data_root, args.device, executor, tracker)
    current = {(c.experiment, c.dataset, c.technique, c.seed): c.config_hash for c in config.cells()}
    frame = load_results([out], current)
    table = summary_table(frame[frame["experiment"] == config.name])
    if table.empty:
        print("no successful cells; see the reasons in", out / "results.jsonl")
    else:
        write_text(out / "summary.csv", table.to_csv(index=False))
        write_text(out / "summary.md", table.to_markdown(index=False) + "\n")
        print(table.to_string(index=False))
        print_differences(frame[frame["experiment"] == config.name])
    print(f"\nresults: {out / 'results.jsonl'}  |  report: python -m aebench report --results {out}")


def print_differences(frame: pd.DataFrame) -> None:
    """Which differences from the baseline are real at the seeds run (paired t-test per dataset)."""
    from aebench.report.statistics import ALPHA, BASELINE, difference_lines

    for dataset, rows in frame.groupby("dataset", sort=False):
        lines = difference_lines(rows)
        if lines:
            print(f"\n{dataset}: each technique minus {BASELINE} on the same seeds (real = paired t-test p < {ALPHA}):")
            print("\n".join(lines))


def relative(path: Path) -> str:
    """A path as the repository sees it: relative to the working directory where it lies below it."""
    resolved = path.resolve()
    return str(resolved.relative_to(Path.cwd())) if resolved.is_relative_to(Path.cwd()) else str(path)


def cmd_report(args: argparse.Namespace) -> None:
    from aebench.files import writable_folder
    from aebench.report.build import write_report

    folders = args.results or sorted(p.parent for p in DEFAULT_RESULTS.glob("*/results.jsonl"))
    if not folders:
        raise UserError(f"no results found under {DEFAULT_RESULTS}/ (run an experiment first, or pass --results DIR)")
    for folder in folders:
        if not (folder / "results.jsonl").is_file():
            raise UserError(f"{folder}: no results.jsonl here (pass a folder written by 'aebench run')")
    writable_folder(args.out, "--out")
    command = f"python -m aebench report --results {' '.join(map(relative, folders))} --out {relative(args.out)}"
    path = write_report(folders, args.out, command=command)
    print(f"report written to {path}")


def cmd_bench(args: argparse.Namespace) -> None:
    from aebench.bench.run import BenchSettings, bench_experiment, device_name, markdown_table, write_json
    from aebench.data import default_data_root
    from aebench.execution.runner import resolve_device
    from aebench.experiment import load_experiment
    from aebench.techniques import TECHNIQUES

    repeats = args.repeats if args.repeats is not None else (1 if args.sweep else 5)
    if min(args.steps, repeats, args.sweep_images, args.sweep_epochs, args.sweep_seeds) < 1:
        raise UserError("--steps, --repeats and the --sweep-* counts must be at least 1")
    sets = list(args.sets)
    if not args.sweep:  # a sweep keeps the experiment's techniques and seeds: it estimates the whole experiment
        techniques = list(TECHNIQUES) if args.technique == "all" else [args.technique]
        sets += [f"techniques={techniques}", "seeds=[0]"]
    elif args.technique != "all":
        sets.append(f"techniques=[{args.technique}]")
    if args.dataset:
        sets.append(f"datasets=[{args.dataset}]")
    config = load_experiment(args.experiment, sets)
    require_device(args.device)
    device = resolve_device(args.device)
    data_root = args.data_root or default_data_root()
    if args.sweep:
        from aebench.bench.sweep import SweepSettings, markdown_sweep, sweep_report

        settings = SweepSettings(args.sweep_images, epochs=args.sweep_epochs, seeds=args.sweep_seeds, repeats=repeats)
        report = sweep_report(config, args.experiment, sets, data_root, args.device, settings)
        text = markdown_sweep({**report, "device": device_name(device)})
    elif args.busy_core:
        from aebench.bench.busy import busy_report, markdown_busy

        cell = config.cell(config.datasets[0], config.techniques[0], config.seeds[0])
        report = busy_report(cell, data_root, str(device), BenchSettings(steps=args.steps, repeats=repeats))
        text = markdown_busy(report)
    else:
        report = bench_experiment(config, data_root, device, BenchSettings(steps=args.steps, repeats=repeats))
        text = markdown_table(report)
    report["command"] = "python -m aebench " + " ".join(sys.argv[1:])
    print(text)
    if args.json:
        write_json(report, args.json)


def require_device(name: str) -> None:
    """``--device cuda`` where there is none is a user error."""
    import torch

    if name == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available here (use --device cpu or auto)")


COMMANDS = {"run": cmd_run, "report": cmd_report, "list": cmd_list, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        COMMANDS[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, inside the handler below, not at interpreter exit
    except UserError as exc:
        print(f"aebench: error: {exc}", file=sys.stderr)
        return 2
    except MachineFault as exc:
        print(f"aebench: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # e.g. `aebench run X --dry-run | head -1`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0
    except OSError as exc:  # a disk that fills or turns read-only while writing the summary or the report
        if not is_machine_fault(exc):
            raise
        print(f"aebench: error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("aebench: interrupted; finished cells are kept in results.jsonl (rerun to resume)", file=sys.stderr)
        return 130
    return 0
