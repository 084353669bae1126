"""``aeqprop bench fidelity PROTOCOL``: how close each estimator's update is to the true gradient.

The protocol's system is built as for a run; the true gradient comes from the system's oracle, which the
composition root supplies (``aeqprop.protocol.oracle_for``). The batch is the first ``--samples`` training
samples of the protocol's data set, with its target encoding.
"""

from __future__ import annotations

import argparse
import json
from contextlib import closing

from aeqprop.data import load_dataset, one_hot
from aeqprop.estimators import NEEDS
from aeqprop.fidelity import bias_orders, format_table, parse_estimator, sweep
from aeqprop.protocol import Protocol, ProtocolError, build, load_protocol, oracle_for
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
    parser.add_argument("--repeats", type=int, default=1, help="estimates per setting (for bias vs spread)")
    parser.add_argument("--samples", type=int, default=4, help="training samples in the batch")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    if args.samples < 1 or args.repeats < 1:
        raise ProtocolError("--samples and --repeats must be at least 1")
    system = build(protocol).system
    with closing(system):  # a rig switches outputs on when built: off again on every path
        return _measure(args, protocol, system)


def _measure(args: argparse.Namespace, protocol: Protocol, system: PhysicalSystem) -> int:
    truth_of = oracle_for(protocol, system)
    data = protocol.data
    dataset = load_dataset(data.name, data.root, data.test_fraction, data.split_seed)
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
    truth = truth_of(x, y)
    points = sweep(system, x, y, truth, labels, betas, reads, args.repeats, protocol.run.seed)
    if args.json:
        print(json.dumps({"points": [p.as_dict() for p in points], "bias_orders": bias_orders(points)}, indent=2))
        return 0
    print(f"{system.spec.description}; {args.samples} samples of {data.name}; true gradient from the oracle")
    print(format_table(points))
    orders = bias_orders(points)
    if orders:
        print("empirical bias order (bias ∝ β^p): " + ", ".join(f"{k} p={v:.2f}" for k, v in orders.items()))
    return 0


__all__ = ["HELP", "add_arguments", "run"]
