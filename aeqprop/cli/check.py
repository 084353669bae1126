"""``aeqprop check PROTOCOL``: run the conformance kit (aeqprop.testing.check_system) on a protocol's system.

The system is built as ``aeqprop run`` builds it (same seed, so every check gets the same fresh system). A
system whose settings say it drives real devices (``SystemSettings.drives_hardware()``, the default for
plug-ins) gets only the checks that never reprogram a device, unless ``--reprogram`` is given. Exit status:
0 when every check passed, 1 when one failed (the report names each), 2 for a bad protocol.
"""

from __future__ import annotations

import argparse

import numpy as np

from aeqprop.protocol import load_protocol
from aeqprop.settings import ProtocolError
from aeqprop.system import AeqpropError, PhysicalSystem

HELP = "check that a protocol's system keeps the PhysicalSystem contract (conformance kit)"


class CheckFailed(AeqpropError):
    """The system failed conformance checks (the report was printed)."""

    exit_code = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML) whose [system] is checked")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set system.hidden=[8] (repeatable)")
    parser.add_argument("--reprogram", action="store_true",
                        help="on hardware, also run the checks that program, restore or pulse the devices")
    parser.add_argument("--check", dest="checks", action="append", default=None, metavar="NAME",
                        help="run only this check (repeatable)")


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    try:
        from aeqprop.testing import ConformanceError, check_system
    except ImportError as exc:  # the conformance kit is a separate module of the package
        raise ProtocolError(f"check: the conformance kit aeqprop.testing is not available ({exc})") from None
    settings = protocol.system
    seed = np.random.SeedSequence(protocol.run.seed).spawn(3)[0]

    def factory() -> PhysicalSystem:
        return settings.build(np.random.default_rng(seed))

    safe = settings.drives_hardware() and not args.reprogram
    try:
        report = check_system(factory, hardware_safe=safe, checks=args.checks, raise_on_failure=False)
    except ValueError as exc:  # an unknown --check name
        raise ProtocolError(f"--check: {exc}") from None
    except ConformanceError as exc:  # pragma: no cover - raise_on_failure is off
        report = exc.report
    mode = "hardware-safe checks" if safe else "all checks"
    print(f"{args.protocol}: system {settings.kind!r}, {mode}: {report}")
    if not report.ok:
        raise CheckFailed(f"{args.protocol}: system {settings.kind!r} fails {', '.join(report.failed_checks())}")
    return 0
