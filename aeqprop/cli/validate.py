"""``aeqprop validate PROTOCOL``: check a protocol file (schema, pairing, sizes) without running it."""

from __future__ import annotations

import argparse

from aeqprop.protocol import load_protocol

HELP = "check a protocol file: schema, algorithm/system pairing and data sizes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set run.epochs=3 (repeatable)")


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    print(
        f"{args.protocol}: ok ({protocol.system.kind} system, {protocol.algorithm.summary()}, "
        f"data {protocol.data.label}, "
        f"{protocol.run.epochs} epochs)"
    )
    return 0
