"""Aeqprop's step under noisy parameter read-back, and under the adaptive ε of the stability guard.

1. Read noise: the floating Hopfield 5-6-3 of aeqprop_gradient.py reads θ with Gaussian noise of σ = 0, 0.1 and
   1 × the RMS per-parameter drift of one noiseless step. The homeostat measures the noise floor itself and
   raises its tolerance above it (default settings otherwise). From the same start, ``--repeats`` steps with
   independent noise (each after one held prediction, as in a running system where the homeostat's gains are
   already learned): cos(mean drift, −∇L) shows the step stays unbiased; the single-step cosine shows its
   variance; the ratio |mean drift| / |noiseless drift| checks its size.
2. Adaptive ε: at β = 1e-2, ε = 1e-3 (inside the region) and ε = 0.1 (ε·λ ≈ 0.6 > margin 0.5), the rule with the
   guard takes warm-up steps, then one step whose drift is compared with −∇L at the parameters it started from.
Writes benchmarks/results/aeqprop_noise.json.

    python benchmarks/aeqprop_noise.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine, write_json
from aeqprop.simulators.hopfield import FloatingHopfieldConfig, oracle

from aeqprop.agnostic import AgnosticEP, Homeostat, StabilityGuard


def network(noise: float = 0.0, seed: int = 0):
    cfg = FloatingHopfieldConfig(inputs=5, hidden=[6], outputs=3, bias_init=0.2, init_gain=2.0,
                                 tol=1e-14, tol_param=1e-14, max_sweeps=200_000, read_noise=noise, noise_seed=seed)
    return cfg.build(np.random.default_rng(4))


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def noise_rows(x, y, grad, beta: float, eps: float, repeats: int, reads: int) -> list[dict]:
    net = network()
    homeostat = Homeostat(tolerance=1e-13, max_iterations=300)
    rule = AgnosticEP("centered", beta, homeostat, eps={n: eps for n in net.spec.params})
    rule.predict(net, x)  # first contact: the homeostat learns its gains (they persist in a running system)
    clean = oracle.flatten(rule.step(net, x, y))
    rms = float(np.sqrt(np.mean(clean**2)))
    rows = []
    for factor in (0.0, 0.1, 1.0):
        drifts, holds = [], []
        for r in range(repeats if factor else 1):
            net = network(factor * rms, seed=r)
            rule = AgnosticEP("centered", beta, Homeostat(tolerance=1e-13, max_iterations=300, reads=reads),
                              eps={n: eps for n in net.spec.params})
            rule.predict(net, x)
            drifts.append(oracle.flatten(rule.step(net, x, y)))
            holds.append(rule.last_hold.iterations)
        mean = np.mean(drifts, axis=0)
        row = {
            "sigma_over_drift": factor, "sigma": factor * rms, "reads": reads, "repeats": len(drifts),
            "cos_mean_drift_gradient": cos(mean, -grad),
            "cos_single_step_gradient_mean": float(np.mean([cos(d, -grad) for d in drifts])),
            "mean_drift_norm_ratio": float(np.linalg.norm(mean) / np.linalg.norm(clean)),
            "homeostasis_iterations_mean": float(np.mean(holds)),
            "hold_tolerance": rule.homeostat.tolerances(),
        }
        rows.append(row)
        print({k: v for k, v in row.items() if k != "hold_tolerance"})
    return rows


def guard_rows(x, y, beta: float, warmup: int) -> list[dict]:
    rows = []
    for eps in (1e-3, 0.1):
        net = network()
        rule = AgnosticEP("centered", beta, Homeostat(tolerance=1e-13, max_iterations=300),
                          eps={n: eps for n in net.spec.params}, guard=StabilityGuard(0.5))
        for _ in range(warmup):
            rule.step(net, x, y)
        grad = oracle.flatten(oracle.gradient_fd(net, x, y))
        hessian = oracle.free_energy_hessian_fd(net, x)
        used = rule.eps()
        drift = oracle.flatten(rule.step(net, x, y))
        eps_vec = np.concatenate([np.full(v.size, used[k]) for k, v in net.read_params().items()])
        precond = np.eye(grad.size) + eps_vec[:, None] * hessian
        predicted = -beta * eps_vec * np.linalg.solve(precond, grad)
        true_kappa = float(1 - np.linalg.eigvals(precond).real.min())
        row = {"eps_protocol": eps, "eps_used": used, "measured_eps_lambda": rule.guard.epoch_log(),
               "true_eps_lambda_max_after_guard": true_kappa,
               "cos_gradient": cos(drift, -grad), "cos_first_order": cos(drift, predicted)}
        rows.append(row)
        print(row)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, (8, 5)), np.eye(3)[rng.integers(0, 3, 8)]
    grad = oracle.flatten(oracle.gradient_fd(network(), x, y))
    start = time.perf_counter()
    payload = {
        "benchmark": "aeqprop_noise",
        "network": "floating Hopfield 5-6-3, batch 8, float64; oracle: central finite differences (step 1e-6)",
        "read_noise": noise_rows(x, y, grad, beta=1e-2, eps=1e-2, repeats=args.repeats, reads=1),
        "read_noise_reads4": noise_rows(x, y, grad, beta=1e-2, eps=1e-2, repeats=args.repeats, reads=4),
        "adaptive_eps": guard_rows(x, y, beta=1e-2, warmup=5),
        "wall_s": time.perf_counter() - start, "machine": machine(),
    }
    print(f"wrote {write_json('aeqprop_noise.json', payload)}")


if __name__ == "__main__":
    main()
