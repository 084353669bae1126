"""Does the EP estimate of a DRN protocol follow the true gradient? A directional finite-difference check.

For one training batch at the protocol's initial parameters (or ``--set`` overrides), in float64 solved to
1e-10 V, it estimates the centered-EP gradient at each nudge given and, for every parameter group θ_k
separately, compares the slope the estimate predicts along its own direction d = g_k/|g_k| (that is |g_k|)
with the finite difference (L(θ_k + εd) − L(θ_k − εd)) / 2ε of the free-equilibrium loss
L = mean ½|V_out − y|². A ratio of 1 means the estimate's length along its direction is exact; at small β
it tests the simulator's EP against its own physics, at the recipe's β it shows the O(β²) bias per layer.

    python benchmarks/mnist_drn_gradcheck.py --protocol protocols/mnist-drn3h.toml --betas 2 0.01
"""

from __future__ import annotations

import argparse
import sys

import numpy as np
from _common import ROOT, default_data_root, write_json

from aeqprop.data import load_dataset, one_hot
from aeqprop.estimators import estimate_gradient, free_outputs
from aeqprop.protocol import build, load_protocol


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "mnist-drn3h.toml"))
    parser.add_argument("--betas", type=float, nargs="+", default=[2.0, 0.01])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0, help="which training samples form the batch")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", default=None, help="JSON file under benchmarks/results (optional)")
    args = parser.parse_args()
    exact = ["system.dtype=float64", "system.tol_v=1e-10", "system.max_sweeps=100000"]
    protocol = load_protocol(args.protocol, [*args.overrides, *exact])
    system = build(protocol).system
    data = load_dataset(protocol.data.name, protocol.data.root or default_data_root())
    idx = np.random.default_rng(args.seed).permutation(data.x_train.shape[0])[: args.batch]
    x = data.x_train[idx]
    y = one_hot(data.y_train[idx], data.n_classes, protocol.data.target_low, protocol.data.target_high)

    def loss() -> float:
        outputs, _ = free_outputs(system, x)
        return 0.5 * float(np.mean(np.sum((outputs - y) ** 2, axis=1)))

    base = system.snapshot()
    rows = []
    for beta in args.betas:
        system.restore(base)
        estimate = estimate_gradient(system, x, y, "centered", beta).gradient
        for name in sorted(estimate, key=lambda n: (n.rstrip("0123456789") != "g", int(n.lstrip("gb")))):
            g = estimate[name]
            norm = float(np.linalg.norm(g))
            value = base[f"param.{name}"]
            eps = 1e-4 * float(np.linalg.norm(value)) if np.any(value) else 1e-6
            slopes = []
            for sign in (1.0, -1.0):
                moved = dict(base)
                moved[f"param.{name}"] = value + sign * eps * g / norm
                system.restore(moved)
                slopes.append(loss())
            fd = (slopes[0] - slopes[1]) / (2 * eps)
            rows.append({"beta": beta, "param": name, "ep_norm": norm, "fd_slope": fd, "ratio": fd / norm})
            print(f"beta={beta:g} {name}: |g_EP| = {norm:.4g}, finite-difference slope along it = {fd:.4g}, "
                  f"ratio {fd / norm:.3f}", flush=True)
    if args.output:
        write_json(args.output, {"protocol": args.protocol, "overrides": args.overrides, "batch": args.batch,
                                 "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
