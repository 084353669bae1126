"""Oracle of the Hopfield networks (floating or fixed), for tests and benchmarks only: true loss, gradient, curvature.

Learning rules never see this module. It evaluates the network with its parameters *fixed* (no floating, no
coupling), solving with a tight tolerance no physical system would allow: L(θ) = ½ mean ‖s⁰_L(θ) − y‖²,
its finite-difference gradient, and the finite-difference Hessian of the free energy
F(θ) = mean_b E(θ, x_b, s⁰_b(θ)) that preconditions Aeqprop's step −εΔβ(I + ε∇²F)⁻¹∇L.
"""

from __future__ import annotations

import numpy as np

from .fixed import HopfieldNetwork
from .network import energy_gradients
from .solver import block_coordinate_descent
from .system import FloatingHopfield

Net = FloatingHopfield | HopfieldNetwork


def equilibrium(
    net: Net,
    x: np.ndarray,
    params: dict[str, np.ndarray] | None = None,
    beta: float = 0.0,
    target: np.ndarray | None = None,
    tol: float = 1e-14,
    max_sweeps: int = 200_000,
) -> list[np.ndarray]:
    """Converged unit states with ``params`` held fixed (default: the network's present parameters)."""
    params = net.read_params() if params is None else params
    x = np.asarray(x, dtype=np.float64)
    layers = [np.zeros((x.shape[0], n)) for n in net.topology.sizes[1:]]
    block_coordinate_descent(params, x, layers, beta, target, tol, max_sweeps)
    return layers


def loss(net: Net, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray] | None = None) -> float:
    """True loss: mean over the batch of ½‖s_L − y‖² at the free equilibrium."""
    layers = equilibrium(net, x, params)
    return float(0.5 * np.mean(np.sum((layers[-1] - y) ** 2, axis=1)))


def _flat(params: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([v.ravel() for v in params.values()])


def _unflat(template: dict[str, np.ndarray], flat: np.ndarray) -> dict[str, np.ndarray]:
    out, start = {}, 0
    for name, value in template.items():
        out[name] = flat[start : start + value.size].reshape(value.shape).copy()
        start += value.size
    return out


def gradient_fd(net: Net, x: np.ndarray, y: np.ndarray, step: float = 1e-6) -> dict[str, np.ndarray]:
    """dL/dθ by central finite differences over every parameter entry (small networks only)."""
    base = net.read_params()
    flat = _flat(base)
    grad = np.zeros_like(flat)
    for i in range(flat.size):
        plus, minus = flat.copy(), flat.copy()
        plus[i] += step
        minus[i] -= step
        grad[i] = (loss(net, x, y, _unflat(base, plus)) - loss(net, x, y, _unflat(base, minus))) / (2 * step)
    return _unflat(base, grad)


def free_energy_hessian_fd(net: Net, x: np.ndarray, step: float = 1e-6) -> np.ndarray:
    """∇²F (flattened parameters, w1..wL then b1..bL) by central differences of ∂E/∂θ at the free equilibrium."""
    base = net.read_params()
    flat = _flat(base)
    x = np.asarray(x, dtype=np.float64)
    columns = []
    for i in range(flat.size):
        plus, minus = flat.copy(), flat.copy()
        plus[i] += step
        minus[i] -= step
        g_plus = _flat(energy_gradients(x, equilibrium(net, x, _unflat(base, plus))))
        g_minus = _flat(energy_gradients(x, equilibrium(net, x, _unflat(base, minus))))
        columns.append((g_plus - g_minus) / (2 * step))
    hessian = np.array(columns).T
    return 0.5 * (hessian + hessian.T)


def flatten(params: dict[str, np.ndarray]) -> np.ndarray:
    """Parameters as one vector, in the network's order (w1..wL, b1..bL)."""
    return _flat(params)


__all__ = ["equilibrium", "flatten", "free_energy_hessian_fd", "gradient_fd", "loss"]
