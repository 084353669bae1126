"""``aeqprop run PROTOCOL``: train as the protocol says, into a run directory that can be resumed.

The training itself is :class:`aeqprop.api.Experiment` (the path notebooks and sweep points take too);
this module adds the command line: shipped protocols by name, live-logging flags, and the closing lines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from aeqprop.api import LOGGING_FIELDS, Experiment, RunFailed, check_out, versions
from aeqprop.protocol import load_protocol, to_dict

from .protocols import resolve

HELP = "train a system as a protocol file says"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML), or the name of a shipped one (aeqprop protocols)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set run.epochs=3 (repeatable)")
    parser.add_argument("--out", help="run directory (default: <run.out>/<protocol name>-<time>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the run in DIR from its last checkpoint (run.epochs may be raised)")
    watch = parser.add_argument_group("live logging (optional extras)")
    watch.add_argument("--tensorboard", action="store_true", default=None,
                       help="write TensorBoard event files into RUN_DIR/tensorboard (sets run.tensorboard)")
    watch.add_argument("--mlflow", nargs="?", const=True, default=None, metavar="URI",
                       help="log to MLflow: RUN_DIR/mlflow.db, or the tracking URI given (sets run.mlflow)")
    watch.add_argument("--log-every", type=int, metavar="N", help="batch scalars every N batches (sets run.log_every)")
    parser.add_argument("--json", action="store_true",
                        help="end with the JSON summary line even on a terminal (piped output always does)")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show a progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")


def _logging_overrides(args: argparse.Namespace) -> list[str]:
    """The live-logging flags as ``--set`` overrides, so they end up in the resolved protocol."""
    out = []
    if args.tensorboard:
        out.append("run.tensorboard=true")
    if args.mlflow is not None:
        out.append("run.mlflow=true" if args.mlflow is True else f"run.mlflow={json.dumps(args.mlflow)}")
    if args.log_every is not None:
        out.append(f"run.log_every={args.log_every}")
    return out


def human_summary(summary: dict[str, Any], run_path: Path) -> str:
    """The few lines a person wants at the end of a run."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.2f} %"

    minutes, seconds = divmod(summary.get("wall_s") or 0.0, 60)
    return (f"done: test accuracy {pct(summary.get('test_accuracy'))} (best {pct(summary.get('best_test_accuracy'))}), "
            f"train {pct(summary.get('train_accuracy'))} after {summary.get('epochs')} epochs in "
            f"{int(minutes)} min {seconds:.1f} s\n"
            f"run directory: {run_path}\n"
            f"next: aeqprop report {run_path}   |   aeqprop plot {run_path}")


def _log(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    args.protocol = resolve(args.protocol)
    protocol = load_protocol(args.protocol, [*args.overrides, *_logging_overrides(args)])
    if args.resume:
        out = Path(args.resume)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(args.out) if args.out else Path(protocol.run.out) / f"{Path(args.protocol).stem}-{stamp}"
    check_out(out, bool(args.resume), to_dict(protocol), from_protocol=True)  # before any instrument is opened
    with Experiment.from_protocol(protocol, progress=args.progress, log=_log) as experiment:
        experiment.source = str(args.protocol)
        summary = experiment.fit(out, resume=bool(args.resume))
    if sys.stdout.isatty() and not args.json:
        print(human_summary(summary, out))
    else:
        keys = ("test_accuracy", "train_accuracy", "epochs", "wall_s", "samples_per_s")
        print(json.dumps({k: summary[k] for k in keys}))
    return 0


__all__ = ["HELP", "LOGGING_FIELDS", "RunFailed", "add_arguments", "human_summary", "run", "versions"]
