"""Can a protocol's ε be held at all? Largest curvature of the free energy per parameter group, ε·λ per group.

For energies linear in θ the free energy F(θ) = mean_b min_s E is concave, and the held point of Aeqprop is a
stable equilibrium of (s, θ) only while I + ε∇²F stays positive definite: ε·λ_max(−∇²F) < 1 per group (a
necessary condition; cross-group coupling only tightens it). λ_max of each group's diagonal block is estimated
by power iteration with Hessian-vector products from finite differences of ∂E/∂θ at the free equilibrium
(oracle use: a benchmark, never the rule), on one batch at the network's initial parameters.

    AEQPROP_DATA=/path/to/datasets python benchmarks/aeqprop_stability.py --protocol protocols/mnist-aeqprop.toml
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import default_data_root, machine, write_json
from aeqprop.simulators.hopfield.network import energy_gradients
from aeqprop.simulators.hopfield.oracle import equilibrium

from aeqprop.agnostic import group_eps
from aeqprop.data import load_dataset
from aeqprop.protocol import build, load_protocol, to_dict


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="protocols/mnist-aeqprop.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--iterations", type=int, default=12)
    parser.add_argument("--name", default=None)
    args = parser.parse_args()
    protocol = load_protocol(args.protocol, args.overrides)
    if protocol.system.kind != "hopfield-floating":
        raise SystemExit("this estimate is written for hopfield-floating systems")
    data = load_dataset(protocol.data.name, protocol.data.root or default_data_root(), protocol.data.test_fraction,
                        protocol.data.split_seed)
    system = build(protocol).system
    x = data.x_train[: protocol.run.batch_size]
    base = system.read_params()
    eps = group_eps(system.spec.params, protocol.algorithm.eps, protocol.algorithm.eps_bias)
    rng = np.random.default_rng(0)
    start = time.perf_counter()

    def grad(params):
        return energy_gradients(x, equilibrium(system, x, params, tol=1e-10, max_sweeps=100_000))

    groups = {}
    for name in base:
        v = rng.normal(size=base[name].shape)
        v /= np.linalg.norm(v)
        lam = 0.0
        h = 1e-4
        for _ in range(args.iterations):
            plus = {k: val.copy() for k, val in base.items()}
            minus = {k: val.copy() for k, val in base.items()}
            plus[name] += h * v
            minus[name] -= h * v
            hv = -(grad(plus)[name] - grad(minus)[name]) / (2 * h)  # (−∇²F) v, this group's block
            lam = float(np.sum(hv * v))
            norm = np.linalg.norm(hv)
            if norm == 0:
                break
            v = hv / norm
        groups[name] = {"lambda_max_minus_hessian": lam, "eps": eps[name], "eps_times_lambda": eps[name] * lam,
                        "holdable": eps[name] * lam < 1}
        print(name, groups[name], flush=True)
    payload = {"benchmark": "aeqprop_stability", "protocol": to_dict(protocol), "batch": int(x.shape[0]),
               "groups": groups, "wall_s": time.perf_counter() - start, "machine": machine()}
    name = args.name or f"aeqprop_stability_{protocol.data.name}"
    print(write_json(f"{name}.json", payload))


if __name__ == "__main__":
    main()
