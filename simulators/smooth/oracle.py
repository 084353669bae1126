"""Oracle of the smooth (and untied) layered networks: true loss and gradient, for tests and benchmarks only.

The gradient is exact implicit differentiation at the free fixed point: with J = dF/ds (per sample) and
λ = J⁻ᵀ dL/ds, dL/dθ = -λᵀ dF/dθ. Learning rules never see this module.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .network import backward, relax_fixed_point
from .system import SmoothNetwork


def equilibrium(
    net: SmoothNetwork, x: np.ndarray, params: dict[str, np.ndarray] | None = None, tol: float = 1e-14,
) -> list[np.ndarray]:
    """Free fixed point for ``params`` (default: the network's own), solved tightly from zero."""
    params = net.read_params() if params is None else params
    layers = [np.zeros((x.shape[0], n)) for n in net.sizes[1:]]
    relax_fixed_point(params, np.asarray(x, dtype=np.float64), layers, 0.0, None, tol, 1_000_000)
    return layers


def loss(net: SmoothNetwork, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray] | None = None) -> float:
    """True loss: batch mean of 1/2 |s_L - y|^2 at the free fixed point."""
    out = equilibrium(net, x, params)[-1]
    return float(0.5 * np.mean(np.sum((out - y) ** 2, axis=1)))


def jacobian(params: dict[str, np.ndarray], layers: list[np.ndarray]) -> np.ndarray:
    """dF/ds at the free state, shape (batch, n_state, n_state); rows are F, columns are s."""
    sizes = [s.shape[1] for s in layers]
    offsets = np.concatenate([[0], np.cumsum(sizes)])
    batch, n = layers[0].shape[0], int(offsets[-1])
    depth = len(layers)
    jac = np.zeros((batch, n, n))
    for k in range(1, depth + 1):
        rows = slice(offsets[k - 1], offsets[k])
        if k < depth:
            diag = -1.0 / (1.0 - layers[k - 1] ** 2)
            idx = np.arange(offsets[k - 1], offsets[k])
            jac[:, idx, idx] = diag
            jac[:, rows, offsets[k]:offsets[k + 1]] = backward(params, k + 1).T
        else:
            idx = np.arange(offsets[k - 1], offsets[k])
            jac[:, idx, idx] = -1.0
        if k > 1:
            jac[:, rows, offsets[k - 2]:offsets[k - 1]] = params[f"w{k}"].T
    return jac


def gradient(net: SmoothNetwork, x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    """dL/dθ by implicit differentiation at the free fixed point."""
    params = net.read_params()
    x = np.asarray(x, dtype=np.float64)
    layers = equilibrium(net, x, params)
    batch = x.shape[0]
    depth = len(layers)
    dl_ds = np.zeros((batch, sum(s.shape[1] for s in layers)))
    dl_ds[:, -layers[-1].shape[1]:] = (layers[-1] - y) / batch
    lam_flat = np.linalg.solve(np.swapaxes(jacobian(params, layers), 1, 2), dl_ds[..., None])[..., 0]
    lam, start = [], 0
    for s in layers:
        lam.append(lam_flat[:, start:start + s.shape[1]])
        start += s.shape[1]
    nodes = [x, *layers]
    grads: dict[str, np.ndarray] = {}
    for k in range(1, depth + 1):
        g = -(nodes[k - 1].T @ lam[k - 1])
        if net.tied and k > 1:  # w_k also carries layer k back into hidden layer k-1
            g = g - (lam[k - 2].T @ nodes[k])
        grads[f"w{k}"] = g
    for k in range(2, depth + 1):
        if f"v{k}" in params:
            grads[f"v{k}"] = -(nodes[k].T @ lam[k - 2])
    for k in range(1, depth + 1):
        grads[f"b{k}"] = -lam[k - 1].sum(axis=0)
    return grads


def oracle(net: SmoothNetwork) -> Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """The true-gradient function the fidelity harness takes."""
    return lambda x, y: gradient(net, x, y)


def asymmetry(params: dict[str, np.ndarray]) -> float:
    """Relative coupling mismatch ‖v_k − w_kᵀ‖ / ‖w_k‖ over all untied layers (0 for a tied network)."""
    num = sum(float(np.sum((params[n] - params["w" + n[1:]].T) ** 2)) for n in params if n.startswith("v"))
    den = sum(float(np.sum(params["w" + n[1:]] ** 2)) for n in params if n.startswith("v"))
    return float(np.sqrt(num / den)) if den else 0.0


__all__ = ["asymmetry", "equilibrium", "gradient", "jacobian", "loss", "oracle"]
