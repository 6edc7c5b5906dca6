"""Command line: ``aebench run | report | list``. Logging is configured here only."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from aebench.errors import UserError
from aebench.results.execution import add_execution_arguments

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

    sub.add_parser("list", help="registered techniques and datasets")
    return parser


def cmd_list(_: argparse.Namespace) -> None:
    from aebench.data import DATASETS
    from aebench.techniques import TECHNIQUES

    width = max(map(len, [*TECHNIQUES, *DATASETS]))
    print("techniques:")
    for info in TECHNIQUES.values():
        print(f"  {info.name:<{width}}  {info.description}")
    print("datasets:")
    for spec in DATASETS.values():
        print(f"  {spec.name:<{width}}  {spec.description}")


def cmd_run(args: argparse.Namespace) -> None:
    from aebench.data import default_data_root
    from aebench.experiment import load_experiment
    from aebench.results.execution import make_executor
    from aebench.results.runner import run_experiment
    from aebench.results.store import cell_key, finished_keys, load_results, read_rows
    from aebench.results.summary import summary_table
    from aebench.results.tracking import make_tracker

    config = load_experiment(args.experiment, args.sets)
    out = args.out or DEFAULT_RESULTS / config.name
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise UserError("--device cuda: no CUDA device is available here (use --device cpu or auto)")
    if args.dry_run:
        done = finished_keys(read_rows(out))
        cells = config.cells()
        print(f"{config.name}: {len(cells)} cells -> {out / 'results.jsonl'}")
        for cell in cells:
            state = "done" if cell_key({**cell.to_dict(), "config_hash": cell.config_hash}) in done else "todo"
            print(f"  {state}  {cell.dataset:<14} {cell.technique:<22} seed {cell.seed}  [{cell.config_hash}]")
        return
    data_root = args.data_root or default_data_root()
    executor, tracker = make_executor(args), make_tracker(args.track, out, config.name)
    run_experiment(config, out, data_root, args.device, executor, tracker)
    frame = load_results([out])
    table = summary_table(frame[frame["experiment"] == config.name])
    if table.empty:
        print("no successful cells; see the reasons in", out / "results.jsonl")
    else:
        table.to_csv(out / "summary.csv", index=False)
        (out / "summary.md").write_text(table.to_markdown(index=False) + "\n")
        print(table.to_string(index=False))
    print(f"\nresults: {out / 'results.jsonl'}  |  report: python -m aebench report --results {out}")


def cmd_report(args: argparse.Namespace) -> None:
    from aebench.report.build import write_report

    folders = args.results or sorted(p.parent for p in DEFAULT_RESULTS.glob("*/results.jsonl"))
    if not folders:
        raise UserError(f"no results found under {DEFAULT_RESULTS}/ (run an experiment first, or pass --results DIR)")
    for folder in folders:
        if not (folder / "results.jsonl").is_file():
            raise UserError(f"{folder}: no results.jsonl here (pass a folder written by 'aebench run')")
    command = f"python -m aebench report --results {' '.join(map(str, folders))} --out {args.out}"
    path = write_report(folders, args.out, command=command)
    print(f"report written to {path}")


COMMANDS = {"run": cmd_run, "report": cmd_report, "list": cmd_list}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        COMMANDS[args.command](args)
    except UserError as exc:
        print(f"aebench: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aebench: interrupted; finished cells are kept in results.jsonl (rerun to resume)", file=sys.stderr)
        return 130
    return 0
