"""Diagnostic: train a DRN protocol with the public code's truncated relaxations instead of exact equilibria.

The authors' PyTorch code relaxes for a fixed number of sweeps and starts both nudged phases of centered EP
from the free state. This script does the same through the system's ``stepwise`` capability (exactly N
sweeps per phase), to test whether a difference in training comes from relaxing exactly. It prints the running
training accuracy and the test accuracy under the same truncated inference. It is slower than a normal run
(the free state is kept with ``snapshot``/``restore``) and writes nothing.

    OPENBLAS_NUM_THREADS=1 python benchmarks/mnist_drn_truncated.py --protocol protocols/mnist-drn3h.toml \\
        --sweeps 6 --train 8000 --test 2000
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _common import ROOT, default_data_root

from aeqprop.data import load_dataset, one_hot
from aeqprop.protocol import build, load_protocol


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "mnist-drn3h.toml"))
    parser.add_argument("--sweeps", type=int, default=6,
                        help="sweeps per phase (public code: 4 / 5 / 6 for 1H / 2H / 3H)")
    parser.add_argument("--train", type=int, default=8000, help="training samples (one pass)")
    parser.add_argument("--test", type=int, default=2000, help="test images evaluated at the end")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    protocol = load_protocol(args.protocol, args.overrides)
    parts = build(protocol)
    net, optimizer = parts.system, parts.rule.optimizer
    data = load_dataset(protocol.data.name, protocol.data.root or default_data_root())
    targets = one_hot(data.y_train, data.n_classes, protocol.data.target_low, protocol.data.target_high)
    beta, bs = protocol.algorithm.beta, protocol.run.batch_size
    order = np.random.default_rng(protocol.run.seed).permutation(data.x_train.shape[0])[: args.train]
    start, correct = time.perf_counter(), 0
    for b in range(len(order) // bs):
        idx = order[b * bs : (b + 1) * bs]
        net.clamp(data.x_train[idx])
        net.nudge(0.0)
        net.step(args.sweeps)
        correct += int(np.sum(np.argmax(net.read_outputs(), axis=1) == data.y_train[idx]))
        free = net.snapshot()
        net.nudge(beta, targets[idx])
        net.step(args.sweeps)
        plus = net.read_local()
        net.restore(free)  # the second phase starts from the free state again, as in the public code
        net.nudge(-beta, targets[idx])
        net.step(args.sweeps)
        minus = net.read_local()
        net.program(optimizer.step({k: (plus[k] - minus[k]) / (2 * beta) for k in plus}))
        if (b + 1) % 500 == 0:
            print(f"batch {b + 1}: running train accuracy {correct / ((b + 1) * bs):.3f} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    net.clamp(data.x_test[: args.test])
    net.nudge(0.0)
    net.step(args.sweeps)
    accuracy = float(np.mean(np.argmax(net.read_outputs(), axis=1) == data.y_test[: args.test]))
    print(f"test accuracy on {args.test} images (same truncated inference): {accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
