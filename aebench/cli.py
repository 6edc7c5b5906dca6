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
from aebench.files import fault_line, is_machine_fault

if TYPE_CHECKING:
    from aebench.execution.cost import CostSettings
    from aebench.experiment import ExperimentConfig

log = logging.getLogger("aebench")
DEFAULT_BENCH_EXPERIMENT = Path("experiments/fashion.yaml")  # what ``aebench bench`` takes its settings from


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
        help="override a config key, dotted (repeatable), e.g. --set train.epochs=2; a sweep axis: "
        "--set 'sweep.model.latent=[8, 16]'",
    )
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="print the cell plan (done, todo, will skip and why; data on disk) and exit",
    )
    run.add_argument(
        "--retry-skipped", action="store_true", help="rerun cells recorded skipped (weights or data now at hand)"
    )
    run.add_argument(
        "--no-cost",
        action="store_true",
        help="skip the controlled cost measurement after the cells (each technique's step against the baseline's, "
        "into cost.json)",
    )
    run.add_argument(
        "--cost-seconds", type=float, metavar="S", help="the cost measurement's cap per technique (default 30 s)"
    )
    add_execution_arguments(run)

    report = sub.add_parser("report", help="regenerate tables and figures from results (never retrains)")
    report.add_argument(
        "--results", type=Path, nargs="+", help="results folders (default: every folder under results/)"
    )
    report.add_argument("--out", type=Path, default=Path("report"), help="report folder (default: report/)")
    report.add_argument("--force", action="store_true", help="write even where --out holds the report of other results")

    listing = sub.add_parser("list", help="registered techniques (with their options) and datasets (found or not)")
    listing.add_argument("--data-root", type=Path, help="dataset folder to look in (default: as for run)")
    add_bench_parser(sub)
    return parser


def add_bench_parser(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        "bench", help="training speed vs a naive loop, FLOPs/img, fraction of peak, memory; --cost: cost vs baseline"
    )
    bench.add_argument("--technique", default="all", help="a technique name, or all (default)")
    bench.add_argument("--dataset", help="dataset (default: the experiment's first)")
    bench.add_argument(
        "--experiment",
        type=Path,
        help=f"settings source (default: {DEFAULT_BENCH_EXPERIMENT}, here or in the checkout)",
    )
    bench.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    bench.add_argument(
        "--data-root", type=Path, help="dataset folder (default: $AEBENCH_DATA or ~/.cache/aebench/data)"
    )
    bench.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="as for run")
    bench.add_argument("--steps", type=int, help="training steps per timed round (default: rounds of 0.2 s; 10)")
    bench.add_argument(
        "--repeats", type=int, help="interleaved pairs of rounds, at least (default 5; --sweep: runs per way, 1)"
    )
    bench.add_argument(
        "--seconds", type=float, default=30.0, help="cap of a timed comparison whose CI is not yet within 5 %% (30)"
    )
    bench.add_argument(
        "--cost",
        action="store_true",
        help="each technique of the experiment: its training cost against the baseline's, interleaved (what "
        "aebench run records in cost.json); with --busy-core quiet and with one core busy, side by side",
    )
    bench.add_argument("--out", type=Path, help="--cost: record it in this results folder (its cost.json)")
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
        help="one cell's training img/s quiet and with one core kept busy, today's default vs aebench's choice "
        "(with --cost: the cost ratios quiet and busy)",
    )
    bench.add_argument("--sweep-images", type=int, default=16384, help="--sweep: training images per cell (16384)")
    bench.add_argument("--sweep-epochs", type=int, default=1, help="--sweep: epochs per cell (default 1)")
    bench.add_argument("--sweep-seeds", type=int, default=1, help="--sweep: the experiment's first N seeds (1)")


def cmd_list(args: argparse.Namespace) -> None:
    from aebench.data import DATASETS, default_data_root
    from aebench.data.folders import image_folders
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
    for folder in image_folders(root):
        print(f"  {'folder:' + folder.name:<{width}}  [found on disk] image folder (train/ and test/ of class folders)")


def cmd_run(args: argparse.Namespace) -> None:
    from aebench import api
    from aebench.execution.options import check_execution_args, executor_from_args
    from aebench.experiment import load_experiment
    from aebench.files import results_folder_checks

    config = load_experiment(args.experiment, args.sets)
    out = api.results_folder(config, args.out)
    api.check_device(args.device)
    if args.cost_seconds is not None and not args.cost_seconds > 0:
        raise UserError(f"--cost-seconds must be above 0 (got {args.cost_seconds})")
    if args.dry_run:  # the run's checks of options and paths, with nothing started or left behind
        check_execution_args(args)
        root = api.data_folder(args.data_root)
        results_folder_checks(out, keep=False)
        print_plan(config, out, root, args.retry_skipped)
        return
    summary = api.run_summarized(
        config, out, args.data_root, args.device, executor_from_args(args), args.track, args.retry_skipped,
        cost_settings(args),
    )  # fmt: skip
    print(summary.text())
    report = out.with_name(f"{out.name}-report")  # beside it: the default report/ may hold another report
    print(f"\nresults: {out / 'results.jsonl'}  |  report: python -m aebench report --results {out} --out {report}")


def cost_settings(args: argparse.Namespace) -> CostSettings | bool:
    """``--no-cost``: False; ``--cost-seconds S``: the default measurement with that cap; else True (the default)."""
    from aebench.execution.cost import DEFAULT_COST

    if args.no_cost or args.cost_seconds is None:
        return not args.no_cost
    return dataclasses.replace(
        DEFAULT_COST, timer=dataclasses.replace(DEFAULT_COST.timer, max_seconds=args.cost_seconds)
    )


def print_plan(config: ExperimentConfig, out: Path, data_root: Path, retry_skipped: bool) -> None:
    """``--dry-run``: each cell done or todo as the run will find it (and, where the run will record it skipped,
    why), and whether each dataset is on disk."""
    from aebench.config import point_text
    from aebench.data import get_dataset
    from aebench.data.folders import is_folder_spec
    from aebench.execution.planning import expected_skip, plan

    planned = plan(config, out, retry_skipped)
    print(f"{config.name}: {len(planned)} cells -> {out / 'results.jsonl'}")
    for name in config.datasets:
        where = (
            "on disk"
            if get_dataset(name).on_disk(data_root)
            else "no image folder there: the run stops before training (exit 2)"
            if is_folder_spec(name)
            else ("not on disk: the run downloads it, or stops before training (exit 2) where the host does not answer")
        )
        print(f"  data  {name:<14} {where} (data root {data_root})")
    for p in planned:
        cell, why = p.cell, None if p.done else expected_skip(p.cell)
        state = "done" if p.done else "skip" if why else "todo"
        tail = f"  will be recorded skipped: {why}" if why else ""
        point = f"  {point_text(cell.axes.items())}" if cell.axes else ""
        print(f"  {state}  {cell.dataset:<14} {cell.technique:<22} seed {cell.seed}{point}  [{cell.config_hash}]{tail}")


def cmd_report(args: argparse.Namespace) -> None:
    from aebench import api

    print(f"report written to {api.report(args.results, args.out, force=args.force)}")


def cmd_bench(args: argparse.Namespace) -> None:
    from aebench.api import check_device, data_folder
    from aebench.bench.run import BenchSettings, bench_experiment, markdown_table, write_json
    from aebench.execution.cost import device_name
    from aebench.execution.runner import resolve_device
    from aebench.execution.timer import TimerSettings
    from aebench.experiment import load_experiment
    from aebench.techniques import TECHNIQUES

    repeats = args.repeats if args.repeats is not None else (1 if args.sweep else 5)
    counts = [args.steps, repeats, args.sweep_images, args.sweep_epochs, args.sweep_seeds]  # --steps None: from time
    if min(count for count in counts if count is not None) < 1:
        raise UserError("--steps, --repeats and the --sweep-* counts must be at least 1")
    if not args.seconds > 0:
        raise UserError(f"--seconds must be above 0 (got {args.seconds})")
    if (args.cost and args.sweep) or (args.out and not args.cost):
        raise UserError("--cost goes with --busy-core or alone, --out with --cost only")
    check_bench_names(args)
    sets = list(args.sets)
    if not (args.sweep or args.cost):  # a sweep and a cost measurement keep the experiment's techniques
        techniques = list(TECHNIQUES) if args.technique == "all" else [args.technique]
        sets += [f"techniques={techniques}", "seeds=[0]"]
    elif args.technique != "all":
        sets.append(f"techniques=[{args.technique}]")
    if args.dataset:
        sets.append(f"datasets=[{args.dataset}]")
    experiment = args.experiment or default_experiment()
    config = load_experiment(experiment, sets)
    check_device(args.device)
    device = resolve_device(args.device)
    data_root = data_folder(args.data_root)
    timer = TimerSettings(max_seconds=args.seconds, min_pairs=repeats, steps=args.steps)
    if args.cost:
        from aebench.bench.busy import cost_report, markdown_cost
        from aebench.execution.cost import CostSettings

        report = cost_report(config, data_root, device, CostSettings(timer), args.busy_core, args.out)
        text = markdown_cost(report)
    elif args.sweep:
        from aebench.bench.sweep import SweepSettings, markdown_sweep, sweep_report

        settings = SweepSettings(args.sweep_images, epochs=args.sweep_epochs, seeds=args.sweep_seeds, repeats=repeats)
        report = sweep_report(config, experiment, sets, data_root, args.device, settings)
        text = markdown_sweep({**report, "device": device_name(device)})
    elif args.busy_core:
        from aebench.bench.busy import busy_report, markdown_busy

        cell = config.cell(config.datasets[0], config.techniques[0], config.seeds[0])
        report = busy_report(cell, data_root, str(device), args.steps or 10, repeats)
        text = markdown_busy(report)
    else:
        report = bench_experiment(config, data_root, device, BenchSettings(timer))
        text = markdown_table(report)
    report["command"] = "python -m aebench " + " ".join(sys.argv[1:])
    print(text)
    if args.json:
        write_json(report, args.json)


def check_bench_names(args: argparse.Namespace) -> None:
    """``--technique`` and ``--dataset`` name registered ones; a UserError naming the flag otherwise."""
    from aebench.data import DATASETS
    from aebench.techniques import TECHNIQUES

    for flag, name, known in (
        ("--technique", args.technique, ["all", *TECHNIQUES]),
        ("--dataset", args.dataset, DATASETS),
    ):
        if name is not None and name not in known:
            raise UserError(f"{flag} {name}: unknown name (known: {', '.join(known)})")


def default_experiment() -> Path:
    """``experiments/fashion.yaml`` below the working directory, else the one in the aebench checkout."""
    from aebench.about import PACKAGE_DIR

    for path in (DEFAULT_BENCH_EXPERIMENT, PACKAGE_DIR.parent / DEFAULT_BENCH_EXPERIMENT):
        if path.is_file():
            return path
    raise UserError(
        f"no --experiment given, and {DEFAULT_BENCH_EXPERIMENT} is neither here nor in {PACKAGE_DIR.parent} "
        "(pass --experiment FILE)"
    )


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
    except KeyboardInterrupt:
        print("aebench: interrupted; finished cells are kept in results.jsonl (rerun to resume)", file=sys.stderr)
        return 130
    except Exception as exc:
        return os_error_status(exc)
    return 0


def os_error_status(exc: Exception) -> int:
    """One line for an OS error of a path (exit 2: a name too long, not a folder, exists, ...) or a machine fault
    anywhere in the error's chain (exit 1: disk full, read-only, I/O; also when a library wrapped it); any other
    error is a bug and keeps its traceback."""
    if is_machine_fault(exc):
        print(f"aebench: error: {fault_line(exc)}", file=sys.stderr)
        return 1
    if isinstance(exc, OSError) and exc.filename is not None:
        print(f"aebench: error: {exc.filename}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    raise exc
