"""Exact block coordinate descent for layered resistive networks (Scellier 2024).

With all other nodes fixed, the power function is a 1-D quadratic in each node voltage, so the exact minimiser
is the conductance-weighted mean of the neighbours plus injected current, clipped to the diode bounds. In a
layered network the odd and even layers are conditionally independent, so whole layers (and whole batches)
update at once. Each half-sweep lowers P; the solver stops when no node moved more than ``tol_v`` volts in
a sweep and raises :class:`~aeqprop.system.NotSettled` when ``max_sweeps`` is spent.

Hot path: plain array operations only (matmul, divide, clip), no Python loop over nodes or samples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aeqprop.system import NotSettled, RelaxReport


@dataclass
class Coefficients:
    """Per-layer diagonal (total conductance at each node) and the input drive, cached between relaxations."""

    diag: list[np.ndarray]  # free layers 1..L, output diagonal WITHOUT the nudge conductance
    drive: np.ndarray  # (B, n_1): V_in @ g1 + b1, constant while inputs, g1 and b1 are unchanged


def input_drive(params: dict[str, np.ndarray], v_in: np.ndarray) -> np.ndarray:
    """Current injected into layer 1 by the clamped inputs and the layer's bias sources."""
    drive = v_in @ params["g1"]
    drive += params["b1"]
    return drive


def diagonals(params: dict[str, np.ndarray], depth: int) -> list[np.ndarray]:
    """Total conductance at each free node: incoming column sums plus outgoing row sums."""
    diag = []
    for k in range(1, depth + 1):
        d = params[f"g{k}"].sum(axis=0)
        if k < depth:
            d = d + params[f"g{k + 1}"].sum(axis=1)
        diag.append(d)
    return diag


def block_coordinate_descent(
    params: dict[str, np.ndarray],
    coeffs: Coefficients,
    layers: list[np.ndarray],
    lows: list[np.ndarray],
    highs: list[np.ndarray],
    beta: float,
    target: np.ndarray | None,
    tol_v: float,
    max_sweeps: int,
    exact_sweeps: bool = False,
) -> RelaxReport:
    """Relax ``layers`` to the constrained minimum of P + beta/2 ||V_L - y||^2.

    ``layers`` (a list of (B, n_k) arrays) is updated in place: its entries are replaced by the new layers.
    With ``exact_sweeps`` it runs exactly ``max_sweeps`` sweeps and reports, rather than raises, when the
    state has not settled (continual EP moves parameters between such steps).
    """
    depth = len(layers)
    out_diag = coeffs.diag[-1] + beta
    if np.any(out_diag <= 0):
        node = int(np.argmin(out_diag))
        raise NotSettled(
            f"energy unbounded below: output node {node} has total conductance "
            f"{coeffs.diag[-1][node]:.4g} S and nudge beta={beta:.4g} (sum must stay > 0)"
        )
    # 1/diag; a node with no conductance at all is held at 0 V by its diode (or floats at 0 if linear).
    inv_diag = [np.where(d > 0, 1.0 / np.where(d > 0, d, 1.0), 0.0).astype(d.dtype) for d in coeffs.diag[:-1]]
    inv_diag.append((1.0 / out_diag).astype(out_diag.dtype))
    # Constant current injected into each layer during this relaxation.
    inject = [coeffs.drive] + [params[f"b{k}"] for k in range(2, depth + 1)]
    if beta != 0.0:
        if target is None:
            raise ValueError("a nonzero nudge needs a target")
        inject[-1] = inject[-1] + beta * target
    weights = [params[f"g{k}"] for k in range(1, depth + 1)]
    order = list(range(0, depth, 2)) + list(range(1, depth, 2))  # layers 1,3,5.. then 2,4,.. (0-based)
    residual = np.inf
    first = None
    for sweep in range(1, max_sweeps + 1):
        residual = 0.0
        for i in order:
            num = inject[i] + layers[i - 1] @ weights[i] if i > 0 else inject[0].copy()
            if i < depth - 1:
                num += layers[i + 1] @ weights[i + 1].T
            num *= inv_diag[i]
            if i < depth - 1:
                np.maximum(num, lows[i], out=num)
                np.minimum(num, highs[i], out=num)
            old = layers[i]
            layers[i] = num
            if num.size:
                np.subtract(old, num, out=old)
                residual = max(residual, float(np.abs(old, out=old).max()))
        if residual <= tol_v and not exact_sweeps:
            return RelaxReport(sweeps=sweep, residual=residual)
        first = residual if first is None else first
        if not np.isfinite(residual) or residual > 1e6 * max(first, tol_v):
            raise NotSettled(
                f"relaxation diverges (change grew from {first:.3g} V to {residual:.3g} V after {sweep} sweeps): "
                f"with nudge beta={beta:.4g} the circuit has no stable equilibrium; use a smaller |beta| or "
                "larger output conductances"
            )
    if exact_sweeps:
        return RelaxReport(sweeps=max_sweeps, residual=residual, settled=residual <= tol_v)
    raise NotSettled(
        f"block coordinate descent did not settle in {max_sweeps} sweeps "
        f"(last change {residual:.3g} V > tolerance {tol_v:.3g} V)"
    )
