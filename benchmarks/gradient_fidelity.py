"""Gradient fidelity of EP estimators against the true gradient (oracle), as functions of β and of reads.

Writes benchmarks/results/gradient_fidelity.json and .png. Three parts:
1. bias vs β on a small smooth (tied tanh) network for every estimator, with the empirical order of each;
2. the issue's check at fixed β = 0.05: stencil ≥ 10× below centered ≥ 10× below one-sided;
3. read noise: bias and spread vs repeated reads (spread falls as 1/√reads; bias does not).
For contrast, the resistive network (ideal diodes: piecewise-linear equilibria) at the same β.
Run: python benchmarks/gradient_fidelity.py
"""

from __future__ import annotations

import time

import numpy as np
from _common import RESULTS, machine, write_json
from aeqprop.simulators.resistive import ResistiveConfig
from aeqprop.simulators.resistive import oracle as resistive_oracle
from aeqprop.simulators.smooth import SmoothConfig
from aeqprop.simulators.smooth import oracle as smooth_oracle

from aeqprop.estimators import estimate_gradient
from aeqprop.fidelity import bias_orders, relative_error, sweep

ESTIMATORS = ["one-sided", "centered", "stencil", "cauchy-4", "cauchy-6", "cauchy-8"]
BETAS = [0.2, 0.1, 0.05, 0.025, 0.0125]
CHECK_BETA = 0.05


def smooth(read_noise: float = 0.0):
    cfg = SmoothConfig(inputs=5, hidden=[6, 4], outputs=3, init_gain=1.5, tol=1e-14, max_sweeps=100_000,
                       read_noise=read_noise)
    return cfg.build(np.random.default_rng(0))


def main() -> None:
    start = time.perf_counter()
    rng = np.random.default_rng(1)
    x, y = rng.random((4, 5)), rng.random((4, 3))
    net = smooth()
    truth = smooth_oracle.gradient(net, x, y)
    by_beta = sweep(net, x, y, truth, ESTIMATORS, BETAS)
    orders = bias_orders(by_beta)
    check = {p.estimator: p.relative_error for p in by_beta if p.beta == CHECK_BETA}
    check_ratios = {
        "centered_over_stencil": check["centered"] / check["stencil"],
        "one_sided_over_centered": check["one-sided"] / check["centered"],
    }

    noisy = smooth(read_noise=1e-3)
    noise_points = sweep(noisy, x, y, truth, ["one-sided", "centered", "stencil"], [CHECK_BETA],
                         reads=(1, 4, 16, 64), repeats=40, seed=2)

    res_net = ResistiveConfig(inputs=5, hidden=[6, 4], outputs=3, input_gain=2.0, bias_init=0.1, init_gain=20.0,
                              tol_v=1e-13, max_sweeps=100_000).build(np.random.default_rng(3))
    res_truth = resistive_oracle.gradient_fd(res_net, x, y)
    resistive = {
        e: relative_error(estimate_gradient(res_net, x, y, e, CHECK_BETA).gradient, res_truth)
        for e in ("one-sided", "centered", "stencil")
    }

    payload = {
        "system": net.spec.description,
        "batch": 4,
        "check_beta": CHECK_BETA,
        "check_relative_error": check,
        "check_ratios": check_ratios,
        "check_passed": check_ratios["centered_over_stencil"] >= 10 and check_ratios["one_sided_over_centered"] >= 10,
        "bias_orders": orders,
        "by_beta": [p.as_dict() for p in by_beta],
        "read_noise": {"sigma": 1e-3, "points": [p.as_dict() for p in noise_points]},
        "resistive_at_check_beta": {"system": res_net.spec.description, "relative_error": resistive},
        "wall_s": time.perf_counter() - start,
        "machine": machine(),
    }
    path = write_json("gradient_fidelity.json", payload)
    plot(by_beta, noise_points, orders)
    print(f"wrote {path}")
    print(f"at beta={CHECK_BETA}: " + ", ".join(f"{k} {v:.3e}" for k, v in check.items()))
    print("ratios: " + ", ".join(f"{k} {v:.1f}" for k, v in check_ratios.items()))
    print("bias orders: " + ", ".join(f"{k} {v:.2f}" for k, v in orders.items()))


def plot(by_beta, noise_points, orders) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label in dict.fromkeys(p.estimator for p in by_beta):
        rows = [p for p in by_beta if p.estimator == label]
        left.loglog([p.beta for p in rows], [p.bias for p in rows], "o-", label=f"{label} (p={orders[label]:.1f})")
    left.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    left.set_xlabel("β")
    left.set_ylabel("‖estimate − true‖ / ‖true‖")
    left.set_title("bias vs β (smooth network, oracle gradient)")
    left.legend(fontsize=8)
    for i, label in enumerate(dict.fromkeys(p.estimator for p in noise_points)):
        rows = [p for p in noise_points if p.estimator == label]
        color = f"C{i}"
        right.loglog([p.reads for p in rows], [p.spread for p in rows], "o-", color=color, label=f"{label} spread")
        right.loglog([p.reads for p in rows], [p.bias for p in rows], "x--", color=color,
                     label=f"{label} bias (+ spread/√repeats)")
    right.set_xlabel("repeated reads averaged")
    right.set_title(f"read noise σ=1e-3, β={CHECK_BETA}")
    right.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(RESULTS / "gradient_fidelity.png", dpi=120)


if __name__ == "__main__":
    main()
