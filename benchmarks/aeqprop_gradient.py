"""Does Aeqprop's drift follow the gradient? Cosine of the measured drift vs the true gradient over β and ε.

On a small floating Hopfield network (the rule sees only the contract), for each variant, nudge β and coupling
ε: one Aeqprop step from the same initial state, compared with
- the true gradient ∇L (oracle, central finite differences of the loss with θ fixed): cos(drift, −∇L);
- the first-order prediction −εΔβ(I + ε∇²F)⁻¹∇L (∇²F by finite differences of ∂E/∂θ at the free equilibrium).
With the stability guard on (``adaptive_rows``), the same comparison after the guard has set ε from the measured
response (5 warm-up steps on the batch, then the measured step, gradient taken where that step starts).
With a drift gain G (``gain_rows``): the set point moves by G times the measured drift; the step must keep
its direction (cosine) and be G times the plain step.
Writes benchmarks/results/aeqprop_gradient.json and .png.

    python benchmarks/aeqprop_gradient.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import RESULTS, machine, write_json
from aeqprop.simulators.hopfield import FloatingHopfieldConfig, oracle

from aeqprop.agnostic import VARIANTS, AgnosticEP, Homeostat, NotHeld, StabilityGuard, nudges
from aeqprop.system import NotSettled

BETAS = (1e-3, 1e-2, 0.1, 0.3, 0.9)
EPSILONS = (1e-3, 1e-2, 0.05, 0.1)


def network():
    cfg = FloatingHopfieldConfig(inputs=5, hidden=[6], outputs=3, bias_init=0.2, init_gain=2.0,
                                 tol=1e-14, tol_param=1e-14, max_sweeps=200_000)
    return cfg.build(np.random.default_rng(4))


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args()
    rng = np.random.default_rng(2)
    x, y = rng.uniform(0, 1, (8, 5)), np.eye(3)[rng.integers(0, 3, 8)]
    net = network()
    grad = oracle.flatten(oracle.gradient_fd(net, x, y))
    hessian = oracle.free_energy_hessian_fd(net, x)
    rows = []
    start = time.perf_counter()
    for variant in VARIANTS:
        for beta in BETAS:
            b1, b2 = nudges(variant, beta)
            for eps in EPSILONS:
                row = {"variant": variant, "beta": beta, "eps": eps, "beta1": b1, "beta2": b2}
                precond = np.eye(grad.size) + eps * hessian
                row["lambda_min_I_plus_eps_hessian"] = float(np.linalg.eigvalsh(precond)[0])
                predicted = -eps * (b2 - b1) * np.linalg.solve(precond, grad)
                net = network()
                rule = AgnosticEP(variant, beta, Homeostat(tolerance=1e-13, max_iterations=300),
                                  eps={name: eps for name in net.spec.params})
                try:
                    drift = oracle.flatten(rule.step(net, x, y))
                except (NotHeld, NotSettled) as exc:
                    row["error"] = str(exc)
                    rows.append(row)
                    print(variant, beta, eps, "failed:", str(exc)[:80])
                    continue
                row.update(
                    cos_gradient=cos(drift, -grad),
                    cos_first_order=cos(drift, predicted),
                    rel_error_first_order=float(np.linalg.norm(drift - predicted) / np.linalg.norm(predicted)),
                    norm_ratio_to_gradient_step=float(np.linalg.norm(drift) / np.linalg.norm(eps * (b2 - b1) * grad)),
                    homeostasis_iterations=rule.last_hold.iterations,
                )
                rows.append(row)
                print(f"{variant:11s} beta={beta:<6g} eps={eps:<6g} cos(grad)={row['cos_gradient']:.5f} "
                      f"cos(1st order)={row['cos_first_order']:.6f} holds={row['homeostasis_iterations']}")
    adaptive = adaptive_rows(x, y)
    gains = gain_rows(x, y, grad)
    payload = {
        "benchmark": "aeqprop_gradient",
        "adaptive_rows": adaptive,
        "gain_rows": gains,
        "network": "floating Hopfield 5-6-3, batch 8, float64; oracle: central finite differences (step 1e-6)",
        "betas": list(BETAS), "epsilons": list(EPSILONS),
        "first_order_prediction": "-eps * (beta2 - beta1) * (I + eps * hessian_F)^-1 grad_L",
        "rows": rows, "wall_s": time.perf_counter() - start, "machine": machine(),
    }
    path = write_json("aeqprop_gradient.json", payload)
    print(f"wrote {path}")
    if not args.no_plot:
        plot(rows)


def adaptive_rows(x: np.ndarray, y: np.ndarray) -> list[dict]:
    """Cosines under the stability guard (margin 0.5): small β, ε and an ε beyond the margin."""
    rows = []
    for variant in VARIANTS:
        for beta, eps in ((1e-3, 1e-3), (1e-2, 1e-2), (1e-2, 0.1)):
            net = network()
            rule = AgnosticEP(variant, beta, Homeostat(tolerance=1e-13, max_iterations=300),
                              eps={name: eps for name in net.spec.params}, guard=StabilityGuard(0.5))
            for _ in range(5):
                rule.step(net, x, y)
            grad = oracle.flatten(oracle.gradient_fd(net, x, y))
            used = rule.eps()
            drift = oracle.flatten(rule.step(net, x, y))
            row = {"variant": variant, "beta": beta, "eps_protocol": eps, "eps_used": used,
                   "cos_gradient": cos(drift, -grad), "measured": rule.guard.epoch_log()}
            rows.append(row)
            print(f"guard {variant:11s} beta={beta:<6g} eps={eps:<6g} used={min(used.values()):.3g} "
                  f"cos(grad)={row['cos_gradient']:.6f}")
    return rows


def gain_rows(x: np.ndarray, y: np.ndarray, grad: np.ndarray) -> list[dict]:
    """Cosine and length of one step with drift gain G ∈ {1, 10, 100} at small β, ε (same start as ``rows``)."""
    rows = []
    beta, eps = 1e-3, 1e-4
    for variant in VARIANTS:
        b1, b2 = nudges(variant, beta)
        for gain in (1.0, 10.0, 100.0):
            net = network()
            rule = AgnosticEP(variant, beta, Homeostat(tolerance=1e-13, max_iterations=300),
                              eps={name: eps for name in net.spec.params}, drift_gain=gain)
            drift = oracle.flatten(rule.step(net, x, y))
            row = {"variant": variant, "beta": beta, "eps": eps, "drift_gain": gain, "cos_gradient": cos(drift, -grad),
                   "norm_ratio_to_gain_times_gradient_step": float(
                       np.linalg.norm(drift) / np.linalg.norm(gain * eps * (b2 - b1) * grad))}
            rows.append(row)
            print(f"gain {variant:11s} G={gain:<5g} cos(grad)={row['cos_gradient']:.6f} "
                  f"|step|/|G eps dbeta grad|={row['norm_ratio_to_gain_times_gradient_step']:.4f}")
    return rows


def plot(rows: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, sharey="row")
    for col, variant in enumerate(VARIANTS):
        for eps in EPSILONS:
            pts = [r for r in rows if r["variant"] == variant and r["eps"] == eps and "error" not in r]
            betas = [r["beta"] for r in pts]
            axes[0, col].plot(betas, [1 - r["cos_gradient"] for r in pts], "o-", label=f"ε = {eps:g}")
            axes[1, col].plot(betas, [1 - r["cos_first_order"] for r in pts], "o-", label=f"ε = {eps:g}")
        axes[0, col].set_title(variant)
        axes[1, col].set_xlabel("β")
    axes[0, 0].set_ylabel("1 − cos(drift, −∇L)")
    axes[1, 0].set_ylabel("1 − cos(drift, −εΔβ(I+ε∇²F)⁻¹∇L)")
    for ax in axes.ravel():
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.axhline(0.01, color="grey", lw=0.8, ls="--")
        ax.grid(True, which="both", alpha=0.3)
    axes[0, 2].legend()
    fig.suptitle("Aeqprop drift vs true gradient and first-order prediction (dashed: cos = 0.99)")
    fig.tight_layout()
    out = RESULTS / "aeqprop_gradient.png"
    fig.savefig(out, dpi=120)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
