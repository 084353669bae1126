"""Oracle of the resistive network: true loss and true gradient, for tests and benchmarks only.

Learning rules never see this module: it reads the network's parameters directly and solves with a tight
tolerance, which no physical system would allow.
"""

from __future__ import annotations

import numpy as np

from .network import Topology, input_voltages
from .solver import Coefficients, block_coordinate_descent, diagonals, input_drive
from .system import ResistiveNetwork


def equilibrium(
    net: ResistiveNetwork,
    x: np.ndarray,
    params: dict[str, np.ndarray] | None = None,
    beta: float = 0.0,
    target: np.ndarray | None = None,
    tol_v: float = 1e-13,
    max_sweeps: int = 200_000,
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Input voltages and the converged free-layer voltages for ``params`` (default: the network's own)."""
    params = net.read_params() if params is None else params
    topo: Topology = net.topology
    v_in = input_voltages(np.asarray(x, dtype=np.float64), topo.input_gain)
    layers = [np.zeros((x.shape[0], n)) for n in topo.sizes[1:]]
    lows, highs = topo.bounds(np.dtype(np.float64))
    coeffs = Coefficients(diagonals(params, topo.depth), input_drive(params, v_in))
    block_coordinate_descent(params, coeffs, layers, lows, highs, beta, target, tol_v, max_sweeps)
    return v_in, layers


def loss(net: ResistiveNetwork, x: np.ndarray, y: np.ndarray, params: dict[str, np.ndarray] | None = None) -> float:
    """True loss L = mean over the batch of 1/2 ||V_out - y||^2 at the free equilibrium."""
    _, layers = equilibrium(net, x, params)
    return float(0.5 * np.mean(np.sum((layers[-1] - y) ** 2, axis=1)))


def gradient_fd(
    net: ResistiveNetwork, x: np.ndarray, y: np.ndarray, step: float = 1e-6,
    params: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """dL/dθ by central finite differences over every parameter entry (small networks only).

    ``params``: the true parameters when ``read_params`` is a noisy measurement (the memristor crossbar).
    """
    base = net.read_params() if params is None else params
    grads: dict[str, np.ndarray] = {}
    for name, value in base.items():
        grad = np.zeros_like(value)
        for idx in np.ndindex(value.shape):
            plus = {k: v.copy() for k, v in base.items()}
            minus = {k: v.copy() for k, v in base.items()}
            plus[name][idx] += step
            minus[name][idx] -= step
            grad[idx] = (loss(net, x, y, plus) - loss(net, x, y, minus)) / (2 * step)
        grads[name] = grad
    return grads
