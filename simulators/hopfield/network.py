"""Topology, parameters and energy of a layered Hopfield network with hard-sigmoid units (docs/science.md §2).

Layer 0 holds the clamped input x; layers 1..L hold units bounded in [0, 1] (the hard sigmoid). Weights
``w{k}`` (shape ``(n_{k-1}, n_k)``) join consecutive layers and biases ``b{k}`` act on layer k. Per sample,

    E(θ, x, s) = 1/2 sum_k ||s_k||^2 − sum_k s_{k-1}ᵀ w{k} s_k − sum_k b{k}ᵀ s_k ,   s_0 = x,

and the output nudge adds ``beta/2 ||s_L − y||^2``. E is linear in θ: ∂E/∂w{k} = −s_{k-1} s_kᵀ and
∂E/∂b{k} = −s_k, which is what lets the parameters float with the state under a control coupling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Topology:
    """Unit counts per layer, layer 0 being the inputs."""

    sizes: tuple[int, ...]

    @property
    def depth(self) -> int:
        """Number of non-input layers L."""
        return len(self.sizes) - 1


def param_names(depth: int) -> list[str]:
    """Weights then biases, in layer order: w1..wL, b1..bL."""
    return [f"w{k}" for k in range(1, depth + 1)] + [f"b{k}" for k in range(1, depth + 1)]


def init_params(
    topology: Topology, rng: np.random.Generator, init_gain: float, bias_init: float, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """Weights ``U(−s, s)/√fan_in`` scaled by ``init_gain``; biases ``U(−bias_init, bias_init)``."""
    params: dict[str, np.ndarray] = {}
    for k in range(1, topology.depth + 1):
        fan_in, fan_out = topology.sizes[k - 1], topology.sizes[k]
        scale = init_gain / np.sqrt(fan_in)
        params[f"w{k}"] = rng.uniform(-scale, scale, size=(fan_in, fan_out)).astype(dtype)
    for k in range(1, topology.depth + 1):
        params[f"b{k}"] = rng.uniform(-bias_init, bias_init, size=topology.sizes[k]).astype(dtype)
    return params


def energy(params: dict[str, np.ndarray], x: np.ndarray, layers: list[np.ndarray]) -> np.ndarray:
    """E per sample, shape (batch,)."""
    nodes = [x, *layers]
    total = np.zeros(x.shape[0], dtype=x.dtype)
    for k in range(1, len(nodes)):
        pre, post = nodes[k - 1], nodes[k]
        total += 0.5 * np.sum(post**2, axis=1)
        total -= np.sum((pre @ params[f"w{k}"]) * post, axis=1)
        total -= post @ params[f"b{k}"]
    return total


def energy_gradients(x: np.ndarray, layers: list[np.ndarray]) -> dict[str, np.ndarray]:
    """∂E/∂θ averaged over the batch: −mean s_{k-1} s_kᵀ for weights, −mean s_k for biases."""
    nodes = [x, *layers]
    batch = x.shape[0]
    out: dict[str, np.ndarray] = {}
    for k in range(1, len(nodes)):
        out[f"w{k}"] = nodes[k - 1].T @ nodes[k] * (-1.0 / batch)
    for k in range(1, len(nodes)):
        out[f"b{k}"] = -nodes[k].mean(axis=0)
    return out


__all__ = ["Topology", "energy", "energy_gradients", "init_params", "param_names"]
