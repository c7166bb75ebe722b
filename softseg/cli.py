"""Command line: ``python -m softseg {reproduce,bench,train} ...``."""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .results import PRESETS

BENCHMARKS_DIR = Path(__file__).resolve().parent.parent / "benchmarks"


def _available_benchmarks() -> list[str]:
    return sorted(p.stem for p in BENCHMARKS_DIR.glob("*.py")) if BENCHMARKS_DIR.is_dir() else []


#: Exit status of ``reproduce`` when its time budget ran out before every training run finished.
EXIT_BUDGET = 3


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .reproduce import BudgetExhausted, registry, run_reproduction

    if args.list or not args.name:
        known = registry()
        if not known:
            print("no reproductions are registered yet")
        for rep in known.values():
            print(f"{rep.name:28s} {rep.paper}: {rep.description}")
        return 0
    try:
        path = run_reproduction(args.name, preset=args.preset, data=args.data, seed=args.seed, out_dir=args.out,
                                epochs=args.epochs, runs_dir=args.runs_dir, time_budget_min=args.time_budget)
    except BudgetExhausted as stop:
        print(f"softseg reproduce: {stop}", file=sys.stderr)
        return EXIT_BUDGET
    print(f"wrote {path}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    available = _available_benchmarks()
    if args.list or not args.name:
        print("\n".join(available) if available else f"no benchmark scripts in {BENCHMARKS_DIR}")
        return 0
    if args.name not in available:
        print(f"softseg bench: name: expected one of {available}, got {args.name!r}", file=sys.stderr)
        return 2
    sys.argv = [str(BENCHMARKS_DIR / f"{args.name}.py"), *args.rest]
    runpy.run_path(sys.argv[0], run_name="__main__")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import train

    summary = train(args.config, out_dir=args.out, resume=args.resume, device=args.device, preset=args.preset,
                    overwrite=args.overwrite)
    if os.environ.get("RANK", "0") == "0":  # torchrun: one line, from rank 0
        print(f"wrote {summary['files']['summary']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m softseg",
        description="Reproduce the softseg book's experiments and benchmarks.",
    )
    parser.add_argument("--version", action="version", version=f"softseg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{reproduce,bench,train}")

    rep = sub.add_parser("reproduce", help="run a paper reproduction and write results/<name>.json")
    rep.add_argument("name", nargs="?", help="reproduction to run (see --list)")
    rep.add_argument("--list", action="store_true", help="list the registered reproductions")
    rep.add_argument("--preset", choices=PRESETS, default="fast",
                     help="fast: CPU, minutes; full: the paper's sizes (default: fast)")
    rep.add_argument("--data", default=None, help="path to a real data set, where the reproduction takes one")
    rep.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    rep.add_argument("--out", default=None, help="output folder (default: the repository's results/)")
    rep.add_argument("--epochs", type=int, default=None,
                     help="train every network this many epochs instead of the preset's (recorded in the file)")
    rep.add_argument("--time-budget", type=float, default=None, metavar="MINUTES",
                     help="start no training run that would end after this many minutes; exit 3, and the same "
                          "command continues from the finished runs")
    rep.add_argument("--runs-dir", default=None,
                     help="folder of the finished training runs (default with --preset full: OUT/runs/NAME)")
    rep.set_defaults(func=_cmd_reproduce)

    bench = sub.add_parser("bench", help="run a benchmark script of benchmarks/ (prints ratios)")
    bench.add_argument("name", nargs="?", help="benchmark to run (see --list)")
    bench.add_argument("--list", action="store_true", help="list the benchmark scripts")
    bench.add_argument("rest", nargs=argparse.REMAINDER, help="arguments passed to the script")
    bench.set_defaults(func=_cmd_bench)

    tr = sub.add_parser("train", help="train a model from a YAML/TOML config (torchrun: one process per GPU)")
    tr.add_argument("--config", required=True, help="the run's .yaml/.yml/.toml file (see softseg.config)")
    tr.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_last.pt")
    tr.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N (default: the config's, else auto)")
    tr.add_argument("--out", default=None, help="output folder (default: runs/<name>)")
    tr.add_argument("--preset", choices=PRESETS, default=None, help="override the config's preset")
    tr.add_argument("--overwrite", action="store_true", help="start afresh even if OUT holds a checkpoint")
    tr.set_defaults(func=_cmd_train)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return args.func(args)
    except ValueError as err:  # a user's mistake: one clear line, no traceback
        print(f"softseg {args.command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
