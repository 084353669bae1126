"""``aeqprop report RUN_DIR [RUN_DIR ...]``: one self-contained HTML file (figures embedded, works offline)."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from aeqprop.report import build_report
from aeqprop.rundir import RunDirError
from aeqprop.runview import expand, open_run

HELP = "write one self-contained HTML report of one or several runs (summary, curves, devices, protocol)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories written by 'aeqprop run' (a sweep folder stands for all its points)")
    parser.add_argument("-o", "--output",
                        help="HTML path (default RUN_DIR/report.html, or ./report.html for several folders)")
    parser.add_argument("--edge", type=float, default=0.01, metavar="FRACTION",
                        help="a device is 'at an edge' within this fraction of its window (default 0.01)")


def run(args: argparse.Namespace) -> int:
    if not 0 < args.edge < 0.5:
        raise RunDirError(f"--edge {args.edge}: must lie between 0 and 0.5")
    views = [open_run(p) for p in expand(args.run_dirs)]
    names = [v.name for v in views]
    if len(set(names)) != len(names):
        raise RunDirError(f"run directories must have distinct names (got {', '.join(names)})")
    for view in views:
        if not view.records:
            raise RunDirError(f"{view.path}: metrics.jsonl has no epochs yet")
    out = Path(args.output) if args.output else (
        Path(args.run_dirs[0]) / "report.html" if len(args.run_dirs) == 1 else Path("report.html"))
    command = " ".join(shlex.quote(a) for a in ["aeqprop", *sys.argv[1:]]) if sys.argv[1:2] == ["report"] else \
        "aeqprop report " + " ".join(shlex.quote(p) for p in args.run_dirs)
    out.write_text(build_report(views, command, args.edge))
    print(out)
    return 0
