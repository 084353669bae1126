"""The ``aeqprop`` command: one module per sub-command, each with ``add_arguments`` and ``run``."""

from __future__ import annotations

import argparse
import os
import sys

from aeqprop import __version__
from aeqprop.system import AeqpropError

from . import bench, check, plot, run, serve, sweep, systems, validate

COMMANDS = {
    "run": run, "validate": validate, "plot": plot, "serve": serve, "bench": bench, "sweep": sweep,
    "systems": systems, "check": check,
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aeqprop", description=__doc__)
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
