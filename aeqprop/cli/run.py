"""``aeqprop run PROTOCOL``: train as the protocol says, into a run directory that can be resumed."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from aeqprop.api import Experiment, RunFailed, check_out, versions
from aeqprop.protocol import load_protocol, to_dict

HELP = "train a system as a protocol file says"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set run.epochs=3 (repeatable)")
    parser.add_argument("--out", help="run directory (default: <run.out>/<protocol name>-<time>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the run in DIR from its last checkpoint (run.epochs may be raised)")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None,
                     help="always show a progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")


def _log(line: str) -> None:
    print(line, flush=True)


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    if args.resume:
        out = Path(args.resume)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        out = Path(args.out) if args.out else Path(protocol.run.out) / f"{Path(args.protocol).stem}-{stamp}"
    check_out(out, bool(args.resume), to_dict(protocol), from_protocol=True)  # before any instrument is opened
    with Experiment.from_protocol(protocol, progress=args.progress, log=_log) as experiment:
        experiment.source = str(args.protocol)
        summary = experiment.fit(out, resume=bool(args.resume))
    print(json.dumps({k: summary[k] for k in ("test_accuracy", "train_accuracy", "epochs", "wall_s", "samples_per_s")}))
    return 0


__all__ = ["HELP", "RunFailed", "add_arguments", "run", "versions"]
