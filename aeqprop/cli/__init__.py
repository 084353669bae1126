"""The ``aeqprop`` command: one module per sub-command, each with ``add_arguments`` and ``run``."""

from __future__ import annotations

import argparse
import os
import sys

from aeqprop import __version__
from aeqprop.system import AeqpropError

from . import bench, characterise, check, plot, protocols, report, run, serve, sweep, systems, validate

COMMANDS = {
    "run": run, "validate": validate, "plot": plot, "serve": serve, "bench": bench, "sweep": sweep,
    "protocols": protocols, "report": report, "check": check, "systems": systems,
    "characterise": characterise,
}


DESCRIPTION = """\
Train physical learning machines (resistive networks, memristor crossbars, instrument rigs and their
simulators) with equilibrium propagation, treating each machine as a black box. A run is described by one
protocol file; each run leaves a directory you can resume, plot and turn into a report.

examples:
  aeqprop protocols                      list the example protocols that ship with aeqprop
  aeqprop run digits                     train the digits example (or give a protocol file's path)
  aeqprop run digits --tensorboard       ... and log live curves (pip install 'aeqprop[tensorboard]')
  aeqprop report runs/digits-*           one self-contained HTML report of one or several runs
  aeqprop COMMAND --help                 the options of one command"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aeqprop", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"aeqprop {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(handler=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 ok, 1 failed run, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except AeqpropError as exc:
        print(f"aeqprop: error: {exc}", file=sys.stderr)
        return int(getattr(exc, "exit_code", 2))
    except KeyboardInterrupt:
        print("aeqprop: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # a bug, not a user error: one line (AEQPROP_TRACEBACK=1 shows the traceback)
        if os.environ.get("AEQPROP_TRACEBACK"):
            raise
        print(f"aeqprop: internal error: {type(exc).__name__}: {exc} (AEQPROP_TRACEBACK=1 shows where)",
              file=sys.stderr)
        return 1
