"""``aeqprop check PROTOCOL``: run the conformance kit (aeqprop.testing.check_system) on a protocol's system.

The system is built as ``aeqprop run`` builds it (same seed, so every check gets the same fresh system). A
system whose settings say it drives real devices (``SystemSettings.drives_hardware()``, the default for
plug-ins) gets only the checks that never reprogram a device, unless ``--reprogram`` is given. Exit status:
0 when every check passed, 1 when one failed (the report names each), 2 for a bad protocol.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from aeqprop.protocol import load_protocol
from aeqprop.settings import ProtocolError
from aeqprop.system import AeqpropError, PhysicalSystem
from aeqprop.testing import ConformanceError, check_system

HELP = "check that a protocol's system keeps the PhysicalSystem contract (conformance kit)"


class CheckFailed(AeqpropError):
    """The system failed conformance checks (the report was printed)."""

    exit_code = 1


def _tolerance(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML) whose [system] is checked")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set system.hidden=[8] (repeatable)")
    parser.add_argument("--reprogram", action="store_true",
                        help="on hardware, also run the checks that program, restore or pulse the devices")
    parser.add_argument("--check", dest="checks", action="append", default=None, metavar="NAME",
                        help="run only this check (repeatable)")
    parser.add_argument("--atol", type=_tolerance, default=0.0,
                        help="what may differ between two runs that should be identical (hardware: its read noise)")
    parser.add_argument("--rtol", type=_tolerance, default=1e-4,
                        help="what may differ between two routes to one equilibrium, relative to the outputs")


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    settings = protocol.system
    seed = np.random.SeedSequence(protocol.run.seed).spawn(3)[0]

    def factory() -> PhysicalSystem:
        return settings.build(np.random.default_rng(seed))

    beta = getattr(protocol.algorithm, "beta", None)
    safe = settings.drives_hardware() and not args.reprogram
    try:
        report = check_system(
            factory, hardware_safe=safe, checks=args.checks, raise_on_failure=False,
            beta=beta if isinstance(beta, int | float) and beta > 0 else 0.5, atol=args.atol, rtol=args.rtol,
        )
    except ValueError as exc:  # an unknown --check name
        raise ProtocolError(f"--check: {exc}") from None
    except ConformanceError as exc:  # pragma: no cover - raise_on_failure is off
        report = exc.report
    mode = "hardware-safe checks" if safe else "all checks"
    print(f"{args.protocol}: system {settings.kind!r}, {mode}: {report}")
    if not report.ok:
        raise CheckFailed(f"{args.protocol}: system {settings.kind!r} fails {', '.join(report.failed_checks())}")
    return 0
