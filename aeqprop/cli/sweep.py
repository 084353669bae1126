"""``aeqprop sweep PROTOCOL --grid key=v1,v2 ...``: run a grid of protocols in parallel, resumably."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from aeqprop.protocol import read_raw
from aeqprop.sweep import CSV_FILE, SweepError, run_sweep

HELP = "run a protocol over a grid of settings (process pool or Dask cluster); re-runs skip finished points"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...", required=True,
                        help="a protocol field and its values (TOML), e.g. --grid algorithm.reads=1,4,16 "
                        "(repeatable: the grid is the product)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field at every point (repeatable)")
    parser.add_argument("--out", help="sweep folder (default: <run.out>/sweep-<protocol name>-<time>); "
                        "give the same folder again to finish an interrupted or partly failed sweep")
    parser.add_argument("--workers", type=int, default=2, help="local worker processes (default 2)")
    parser.add_argument("--cluster", metavar="tcp://HOST:PORT",
                        help="run the points on this Dask distributed scheduler instead of a local pool")


def run(args: argparse.Namespace) -> int:
    raw = read_raw(args.protocol)
    if args.workers < 1:
        raise SweepError(f"--workers must be >= 1, got {args.workers}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    parent = Path(raw.get("run", {}).get("out", "runs"))
    out = Path(args.out) if args.out else parent / f"sweep-{Path(args.protocol).stem}-{stamp}"
    result = run_sweep(args.protocol, raw, args.grid, out, fixed=args.overrides, workers=args.workers,
                       cluster=args.cluster)
    print(f"{len(result.ran)} ran, {len(result.skipped)} skipped (finished before), {len(result.failed)} failed; "
          f"table: {result.folder / CSV_FILE}")
    return 1 if result.failed else 0
