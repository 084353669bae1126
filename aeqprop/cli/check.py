"""``aeqprop check PROTOCOL``: run the conformance kit (:mod:`aeqprop.testing`) on the protocol's system."""

from __future__ import annotations

import argparse
import math

import numpy as np

from aeqprop.protocol import load_protocol
from aeqprop.testing import check_system

HELP = "check the protocol's system against the contract (on hardware, only what does not reprogram it)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set system.hidden=[8] (repeatable)")
    parser.add_argument("--reprogram", action="store_true",
                        help="hardware (max_batch 1) too: also run the checks that reprogram the device")
    parser.add_argument("--atol", type=_finite, default=0.0,
                        help="what may differ between two runs that should be identical (hardware: its read noise)")
    parser.add_argument("--rtol", type=_finite, default=1e-4,
                        help="what may differ between two routes to one equilibrium, relative to the outputs")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def run(args: argparse.Namespace) -> int:
    """Exit 0 when every check passes, 1 when one fails (the report names it), 2 for a bad protocol."""
    protocol = load_protocol(args.protocol, args.overrides)
    settings = protocol.system
    limit = getattr(settings, "max_batch", None)
    hardware = callable(limit) and limit() == 1
    seed = np.random.SeedSequence(protocol.run.seed).spawn(3)[0]  # the system a run of this protocol builds
    beta = getattr(protocol.algorithm, "beta", None)
    report = check_system(
        lambda: settings.build(np.random.default_rng(seed)),
        hardware_safe=hardware and not args.reprogram,
        beta=beta if isinstance(beta, int | float) and beta > 0 else 0.5,
        atol=args.atol, rtol=args.rtol, raise_on_failure=False,
    )
    mode = "hardware-safe checks" if hardware and not args.reprogram else "all checks"
    print(f"{args.protocol}: {settings.kind} system, {mode}: {report}")
    return 0 if report.ok else 1
