"""Layered smooth Hopfield-like networks: parameters, vector field, fixed-point relaxation, local reads.

Layer 0 holds the clamped inputs x; hidden layers 1..L-1 are tanh neurons; layer L is linear. Forward
couplings ``w{k}`` (shape ``(n_{k-1}, n_k)``) carry layer k-1 into layer k; biases ``b{k}`` feed layer k.
The backward coupling that carries layer k into layer k-1 is ``w{k}.T`` in a *tied* network and a separate
parameter ``v{k}`` (shape ``(n_k, n_{k-1})``) in an *untied* one. The dynamics are the vector field

    F_k = -atanh(s_k) + s_{k-1} w_k + s_{k+1} back_{k+1} + b_k        (hidden k)
    F_L = -(1 + beta) s_L + s_{L-1} w_L + b_L + beta * y               (output)

Tied, F = -dE/ds for the energy E = sum_hidden l(s) + 1/2 |s_L|^2 - sum_k s_{k-1} w_k s_k - sum_k b_k s_k
with l'(s) = atanh(s), plus the nudge beta/2 |s_L - y|^2; untied, there is no energy. The fixed point
(F = 0) is s_k = tanh(pre_k): every function here is holomorphic, so the same code relaxes with complex
nudges (holomorphic EP).
"""

from __future__ import annotations

import numpy as np

from aeqprop.system import NotSettled, RelaxReport


def param_names(depth: int, tied: bool) -> list[str]:
    """Forward couplings, backward couplings (untied only), then biases."""
    names = [f"w{k}" for k in range(1, depth + 1)]
    if not tied:
        names += [f"v{k}" for k in range(2, depth + 1)]
    return names + [f"b{k}" for k in range(1, depth + 1)]


def init_params(
    sizes: tuple[int, ...], rng: np.random.Generator, init_gain: float, tied: bool, asymmetry: float = 0.0,
) -> dict[str, np.ndarray]:
    """Uniform couplings U(-s, s)/sqrt(fan_in); untied backward couplings are ``w.T + asymmetry * noise``.

    ``noise`` has the same scale as the forward couplings, so ``asymmetry = 1`` means mismatch as large as
    the couplings themselves.
    """
    depth = len(sizes) - 1
    params: dict[str, np.ndarray] = {}
    for k in range(1, depth + 1):
        scale = init_gain / np.sqrt(sizes[k - 1])
        params[f"w{k}"] = rng.uniform(-scale, scale, size=(sizes[k - 1], sizes[k]))
    if not tied:
        for k in range(2, depth + 1):
            scale = init_gain / np.sqrt(sizes[k - 1])
            params[f"v{k}"] = params[f"w{k}"].T + asymmetry * rng.uniform(-scale, scale, size=(sizes[k], sizes[k - 1]))
    for k in range(1, depth + 1):
        params[f"b{k}"] = np.zeros(sizes[k])
    return params


def backward(params: dict[str, np.ndarray], k: int) -> np.ndarray:
    """The coupling that carries layer k into layer k-1, shape (n_k, n_{k-1})."""
    return params[f"v{k}"] if f"v{k}" in params else params[f"w{k}"].T


def preactivation(params: dict[str, np.ndarray], x: np.ndarray, layers: list[np.ndarray], k: int) -> np.ndarray:
    """Input current of hidden layer k (1-based): from below, from above and the bias."""
    below = x if k == 1 else layers[k - 2]
    pre = below @ params[f"w{k}"] + params[f"b{k}"]
    if k < len(layers):
        pre = pre + layers[k] @ backward(params, k + 1)
    return pre


def vector_field(
    params: dict[str, np.ndarray], x: np.ndarray, layers: list[np.ndarray], beta: complex = 0.0,
    target: np.ndarray | None = None,
) -> list[np.ndarray]:
    """F(s) per layer (module docstring); zero at an equilibrium."""
    depth = len(layers)
    field = []
    for k in range(1, depth):
        s = layers[k - 1] if np.iscomplexobj(layers[k - 1]) else np.clip(layers[k - 1], -1 + 1e-12, 1 - 1e-12)
        field.append(-np.arctanh(s) + preactivation(params, x, layers, k))
    below = x if depth == 1 else layers[-2]
    out = -(1 + beta) * layers[-1] + below @ params[f"w{depth}"] + params[f"b{depth}"]
    if beta != 0 and target is not None:
        out = out + beta * target
    field.append(out)
    return field


def relax_fixed_point(
    params: dict[str, np.ndarray], x: np.ndarray, layers: list[np.ndarray], beta: complex,
    target: np.ndarray | None, tol: float, max_sweeps: int, damping: float = 1.0,
) -> RelaxReport:
    """Gauss-Seidel sweeps s_k <- (1-d) s_k + d tanh(pre_k), output solved exactly; ``layers`` in place.

    Stops when no unit moves more than ``tol`` in a sweep; raises :class:`NotSettled` when ``max_sweeps`` is
    spent or the iteration blows up (couplings too strong for a unique equilibrium).
    """
    depth = len(layers)
    if abs(1 + beta) < 1e-12:
        raise NotSettled(f"nudge beta={beta} cancels the output units' leak: no equilibrium (use |beta| < 1)")
    inject = params[f"b{depth}"] + (beta * target if beta != 0 and target is not None else 0.0)
    first = None
    residual = np.inf
    for sweep in range(1, max_sweeps + 1):
        residual = 0.0
        for k in range(1, depth):
            new = np.tanh(preactivation(params, x, layers, k))
            if damping != 1.0:
                new = (1 - damping) * layers[k - 1] + damping * new
            residual = max(residual, float(np.max(np.abs(new - layers[k - 1]), initial=0.0)))
            layers[k - 1] = new
        below = x if depth == 1 else layers[-2]
        out = (below @ params[f"w{depth}"] + inject) / (1 + beta)
        residual = max(residual, float(np.max(np.abs(out - layers[-1]), initial=0.0)))
        layers[-1] = out
        if residual <= tol:
            return RelaxReport(sweeps=sweep, residual=residual)
        first = residual if first is None else first
        if not np.isfinite(residual) or residual > 1e6 * max(first, tol):
            raise NotSettled(f"fixed-point relaxation diverges (change {residual:.3g} after {sweep} sweeps)")
    raise NotSettled(
        f"fixed-point relaxation did not settle in {max_sweeps} sweeps (last change {residual:.3g} > {tol:.3g})"
    )


def local_products(
    params: dict[str, np.ndarray], x: np.ndarray, layers: list[np.ndarray], held: list[np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Batch-mean local measurements: -pre (x) post per coupling, -post per bias.

    Tied (``held`` None): both ends read now, which is dE/dθ. Untied: the pre-synaptic end is the activity
    ``held`` at the last free equilibrium (a sample-and-hold per device), so differences between nudged
    phases give the generalized EP update -s0_pre (x) ds_post/dβ.
    """
    depth = len(layers)
    batch = x.shape[0]
    now = [x, *layers]
    pre_nodes = now if held is None else [x, *held]
    out: dict[str, np.ndarray] = {}
    for k in range(1, depth + 1):
        out[f"w{k}"] = -(pre_nodes[k - 1].T @ now[k]) / batch
    for k in range(2, depth + 1):
        if f"v{k}" in params:
            out[f"v{k}"] = -(pre_nodes[k].T @ now[k - 1]) / batch
    for k in range(1, depth + 1):
        out[f"b{k}"] = -now[k].mean(axis=0)
    return out


__all__ = [
    "backward", "init_params", "local_products", "param_names", "preactivation", "relax_fixed_point",
    "vector_field",
]
