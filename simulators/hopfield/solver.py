"""Exact block coordinate descent for the layered Hopfield energy with hard-sigmoid units.

With its neighbours fixed, E is ½‖s_k‖² − s_kᵀh_k per layer (plus the nudge on the output layer): a
separable quadratic whose exact minimiser over the box [0, 1] is clip(h_k, 0, 1), or
clip((h_L + βy)/(1 + β), 0, 1) for the nudged outputs. Odd and even layers are conditionally independent, so
whole layers and whole batches update at once; each half-sweep lowers E. Stops when no unit moved more than
``tol`` in a sweep; raises :class:`~aeqprop.system.NotSettled` when ``max_sweeps`` is spent.
"""

from __future__ import annotations

import numpy as np

from aeqprop.system import NotSettled, RelaxReport


def check_nudge(beta: float, target: np.ndarray | None) -> None:
    """Refuse a nudge under which the energy has no minimum, or a nonzero nudge without a target."""
    if 1.0 + beta <= 0:
        raise NotSettled(f"energy unbounded below: nudge beta={beta:.4g} must exceed -1 for hard-sigmoid outputs")
    if beta != 0.0 and target is None:
        raise ValueError("a nonzero nudge needs a target")


def sweep(
    params: dict[str, np.ndarray], x: np.ndarray, layers: list[np.ndarray], beta: float, target: np.ndarray | None
) -> float:
    """One sweep (odd layers, then even layers), ``layers`` replaced in place; returns the largest change."""
    depth = len(layers)
    weights = [params[f"w{k}"] for k in range(1, depth + 1)]
    biases = [params[f"b{k}"] for k in range(1, depth + 1)]
    residual = 0.0
    for i in list(range(0, depth, 2)) + list(range(1, depth, 2)):
        h = (x if i == 0 else layers[i - 1]) @ weights[i]
        h += biases[i]
        if i < depth - 1:
            h += layers[i + 1] @ weights[i + 1].T
        elif beta != 0.0:
            h += beta * target
            h *= 1.0 / (1.0 + beta)
        np.clip(h, 0.0, 1.0, out=h)
        old = layers[i]
        layers[i] = h
        if h.size:
            np.subtract(old, h, out=old)
            residual = max(residual, float(np.abs(old, out=old).max()))
    return residual


def block_coordinate_descent(
    params: dict[str, np.ndarray],
    x: np.ndarray,
    layers: list[np.ndarray],
    beta: float,
    target: np.ndarray | None,
    tol: float,
    max_sweeps: int,
) -> RelaxReport:
    """Relax ``layers`` (a list of (B, n_k) arrays, replaced in place) to a minimum of E + β/2‖s_L − y‖²."""
    check_nudge(beta, target)
    residual = np.inf
    for count in range(1, max_sweeps + 1):
        residual = sweep(params, x, layers, beta, target)
        if residual <= tol:
            return RelaxReport(sweeps=count, residual=residual)
    raise NotSettled(
        f"Hopfield relaxation did not settle in {max_sweeps} sweeps (last change {residual:.3g} > tolerance {tol:.3g})"
    )


__all__ = ["block_coordinate_descent", "check_nudge", "sweep"]
