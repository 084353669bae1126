"""``aeqprop plot RUN_DIR``: write the run's learning curve as a PNG."""

from __future__ import annotations

import argparse
from pathlib import Path

from aeqprop.plotting import learning_curve
from aeqprop.rundir import RunDirectory, RunDirError

HELP = "plot a run's learning curve (PNG)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run directory written by 'aeqprop run'")
    parser.add_argument("-o", "--output", help="PNG path (default RUN_DIR/learning_curve.png)")


def run(args: argparse.Namespace) -> int:
    run_dir = RunDirectory.open(args.run_dir)
    records = run_dir.read_metrics()
    if not records:
        raise RunDirError(f"{args.run_dir}: metrics.jsonl has no epochs yet")
    out = Path(args.output) if args.output else run_dir.path / "learning_curve.png"
    learning_curve(records, out, title=run_dir.path.name)
    print(out)
    return 0
