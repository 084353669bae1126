"""``aeqprop bench fidelity PROTOCOL``: how close each estimator's update is to the true gradient.

The protocol's system is built as for a run; the true gradient comes from the system's oracle, which the
system's settings supply (``SystemSettings.oracle``), or, with ``--no-oracle`` and on any system
without one (a chip), from the system itself (:mod:`aeqprop.chipgradient`). The batch is the first
``--samples`` training samples of the protocol's data set, with its target encoding.
"""

from __future__ import annotations

import argparse
import json
from contextlib import closing

import numpy as np

from aeqprop.chipgradient import (
    GradientCheckError,
    MeasuredGradient,
    check,
    default_steps,
    measure_gradient,
    sample_entries,
)
from aeqprop.chipgradient import format_table as format_chip_table
from aeqprop.data import load_data, one_hot
from aeqprop.estimators import NEEDS
from aeqprop.fidelity import bias_orders, format_table, parse_estimator, sweep
from aeqprop.protocol import Protocol, ProtocolError, build, load_protocol
from aeqprop.system import PhysicalSystem

HELP = "measure gradient fidelity (cosine, relative error, bias, spread) of EP estimators for a protocol"

DEFAULT_ESTIMATORS = ("one-sided", "centered", "stencil", "cauchy-4", "cauchy-8")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=["fidelity"], help="the measurement (fidelity)")
    parser.add_argument("protocol", help="protocol file (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set system.read_noise=0.001 (repeatable)")
    parser.add_argument("--estimator", dest="estimators", action="append", default=None, metavar="NAME",
                        help="estimator label (one-sided, centered, stencil, cauchy-N; repeatable; default: all "
                             "the system supports)")
    parser.add_argument("--beta", dest="betas", action="append", type=float, default=None,
                        help="nudge strength (repeatable; default: the protocol's beta, /2 and /4)")
    parser.add_argument("--reads", dest="reads", action="append", type=int, default=None,
                        help="repeated reads per measurement (repeatable; default: the protocol's)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="estimates per setting (for bias vs spread; at least 2 without an oracle)")
    parser.add_argument("--samples", type=int, default=4, help="training samples in the batch")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    chip = parser.add_argument_group("without an oracle (a chip; automatic when the system has none)")
    chip.add_argument("--no-oracle", action="store_true",
                      help="measure the true gradient on the system itself (program ±delta, measure the loss)")
    chip.add_argument("--compare-oracle", action="store_true",
                      help="without an oracle, on a simulator: show the oracle's figures beside the measured ones")
    chip.add_argument("--params", type=int, default=32, help="parameters sampled for the measured gradient")
    chip.add_argument("--delta", type=float, default=0.002,
                      help="step ±delta as a fraction of each group's window (else of its RMS value)")
    chip.add_argument("--loss-reads", type=int, default=4, help="output reads averaged per loss measurement")
    chip.add_argument("--loss-repeats", type=int, default=8, help="loss measurements per side (its error bar)")
    chip.add_argument("--param-reads", type=int, default=4, help="reads of a parameter to measure the step taken")


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    if args.samples < 1 or args.repeats < 1:
        raise ProtocolError("--samples and --repeats must be at least 1")
    system = build(protocol).system
    with closing(system):  # a rig switches outputs on when built: off again on every path
        return _measure(args, protocol, system)


def _measure(args: argparse.Namespace, protocol: Protocol, system: PhysicalSystem) -> int:
    truth_of = protocol.system.oracle(system)
    data = protocol.data
    dataset = load_data(data.model_copy(update={'train_limit': None, 'test_limit': None}))
    x = dataset.x_train[: args.samples]
    y = one_hot(dataset.y_train[: args.samples], dataset.n_classes, data.target_low, data.target_high)
    caps = system.spec.capabilities
    labels = args.estimators or [
        e for e in DEFAULT_ESTIMATORS if NEEDS.get(parse_estimator(e)[0], frozenset()) <= caps
    ]
    for label in labels:
        try:
            name, _ = parse_estimator(label)
        except ValueError as exc:
            raise ProtocolError(str(exc)) from None
        missing = NEEDS.get(name, frozenset()) - caps
        if missing:
            raise ProtocolError(f"estimator {label!r} needs capabilities {sorted(missing)} that system "
                                f"{protocol.system.kind!r} does not offer")
    beta = abs(float(getattr(protocol.algorithm, "beta", 0.1)))
    betas = args.betas or [beta, beta / 2, beta / 4]
    reads = args.reads or [int(getattr(protocol.algorithm, "reads", 1))]
    if args.no_oracle or truth_of is None:
        if args.compare_oracle and truth_of is None:
            raise ProtocolError(f"--compare-oracle: system {protocol.system.kind!r} has no oracle")
        return _without_oracle(args, protocol, system, x, y, labels, betas, reads,
                               truth_of if args.compare_oracle else None)
    truth = truth_of(x, y)
    points = sweep(system, x, y, truth, labels, betas, reads, args.repeats, protocol.run.seed)
    if args.json:
        print(json.dumps({"points": [p.as_dict() for p in points], "bias_orders": bias_orders(points)}, indent=2))
        return 0
    print(f"{system.spec.description}; {args.samples} samples of {data.label}; true gradient from the oracle")
    print(format_table(points))
    orders = bias_orders(points)
    if orders:
        print("empirical bias order (bias ∝ β^p): " + ", ".join(f"{k} p={v:.2f}" for k, v in orders.items()))
    return 0


def _without_oracle(args, protocol, system, x, y, labels, betas, reads, oracle) -> int:
    """The chip's own gradient check (:mod:`aeqprop.chipgradient`); the oracle, if any, only for comparison."""
    if "program" not in system.spec.capabilities:
        raise ProtocolError(f"bench fidelity without an oracle programs parameters: system {protocol.system.kind!r} "
                            "does not offer 'program'")
    if args.params < 1 or not 0 < args.delta < 1 or min(args.loss_reads, args.param_reads) < 1 or args.loss_repeats < 2:
        raise ProtocolError("--params >= 1, 0 < --delta < 1, --loss-reads/--param-reads >= 1 and --loss-repeats >= 2")
    rng = np.random.default_rng(protocol.run.seed)
    entries = sample_entries(system.spec, args.params, rng)
    snap = system.snapshot()
    steps = default_steps(system, args.delta)

    def measure() -> MeasuredGradient:
        return measure_gradient(system, x, y, entries, steps, args.loss_reads, args.loss_repeats, args.param_reads)

    try:
        points, measured = check(system, x, y, entries, measure, labels, betas, reads, max(2, args.repeats), rng,
                                 oracle)
        system.restore(snap)  # leave the chip as it was found
    except GradientCheckError as exc:
        raise ProtocolError(str(exc)) from None
    finally:
        system.close()
    if args.json:
        print(json.dumps({"parameters": [[n, list(i)] for n, i in measured.entries],
                          "gradient": measured.gradient.tolist(),
                          "stderr": measured.stderr.tolist(), "snr": measured.snr,
                          "skipped": [[n, list(i)] for n, i in measured.skipped],
                          "points": [p.as_dict() for p in points]}, indent=2))
        return 0
    print(f"{system.spec.description}; {args.samples} samples of {protocol.data.name}; true gradient of "
          f"{len(measured.entries)} sampled parameters measured on the system (±{args.delta:g} steps, "
          f"{measured.programs} programs, {measured.relaxations} relaxations); SNR {measured.snr:.1f}")
    if measured.skipped:
        print(f"left out (did not move: stuck devices): {', '.join(f'{n}{list(i)}' for n, i in measured.skipped)}")
    if measured.snr < 3:
        print("warning: the measured gradient is barely above its noise (SNR < 3): raise --loss-repeats, "
              "--loss-reads or --samples, or --delta")
    print(format_chip_table(points))
    return 0


__all__ = ["HELP", "add_arguments", "run"]
