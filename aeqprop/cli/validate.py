"""``aeqprop validate PROTOCOL``: check a protocol file (schema, pairing, sizes) without running it."""

from __future__ import annotations

import argparse

from aeqprop.protocol import load_protocol

from .protocols import resolve

HELP = "check a protocol file: schema, algorithm/system pairing and data sizes"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML), or the name of a shipped one (aeqprop protocols)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set run.epochs=3 (repeatable)")


def run(args: argparse.Namespace) -> int:
    args.protocol = resolve(args.protocol)
    protocol = load_protocol(args.protocol, args.overrides)
    print(
        f"{args.protocol}: ok ({protocol.system.kind} system, {protocol.algorithm.summary()}, "
        f"data {protocol.data.label}, "
        f"{protocol.run.epochs} epochs)"
    )
    return 0
