"""Topology, parameters and energy (power function) of a layered nonlinear resistive network.

Layer 0 holds the input voltage sources (``gain * [x, -x]``); layers 1..L-1 are hidden nodes whose first half
is bounded below by an ideal diode to ground (V >= 0) and second half bounded above (V <= 0); layer L holds
the linear output nodes. Conductances ``g{k}`` (shape ``(n_{k-1}, n_k)``, g >= 0) join consecutive layers and
current sources ``b{k}`` inject into every node of layer k >= 1. The steady state minimises

    P(V) = 1/2 sum_k sum_ij g{k}_ij (V_{k-1,i} - V_{k,j})^2 - sum_k b{k} . V_k

under the diode bounds (a convex quadratic program, docs/science.md §3). The output nudge adds
``beta/2 * ||V_L - y||^2`` (a conductance beta to a source at the target).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Topology:
    """Node counts per layer (layer 0 = the 2*n_inputs input sources) and the input gain in volts."""

    sizes: tuple[int, ...]
    input_gain: float

    @property
    def depth(self) -> int:
        """Number of non-input layers L."""
        return len(self.sizes) - 1

    def bounds(self, dtype: np.dtype) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Lower and upper diode bounds per non-input layer (index 0 is layer 1)."""
        lows, highs = [], []
        for k in range(1, self.depth + 1):
            n = self.sizes[k]
            lo = np.full(n, -np.inf, dtype=dtype)
            hi = np.full(n, np.inf, dtype=dtype)
            if k < self.depth:  # hidden: excitatory half V >= 0, inhibitory half V <= 0
                lo[: n // 2] = 0.0
                hi[n // 2 :] = 0.0
            lows.append(lo)
            highs.append(hi)
        return lows, highs


def param_names(depth: int) -> list[str]:
    """Conductances then biases, in layer order: g1..gL, b1..bL."""
    return [f"g{k}" for k in range(1, depth + 1)] + [f"b{k}" for k in range(1, depth + 1)]


def init_params(
    topology: Topology, rng: np.random.Generator, init_gain: float, bias_init: float, dtype: np.dtype
) -> dict[str, np.ndarray]:
    """Half-Kaiming uniform conductances clipped at zero (as in the public DRN code); uniform biases."""
    params: dict[str, np.ndarray] = {}
    for k in range(1, topology.depth + 1):
        fan_in, fan_out = topology.sizes[k - 1], topology.sizes[k]
        scale = init_gain / np.sqrt(fan_in)
        params[f"g{k}"] = np.clip(rng.uniform(-scale, scale, size=(fan_in, fan_out)), 0.0, None).astype(dtype)
    for k in range(1, topology.depth + 1):
        params[f"b{k}"] = rng.uniform(-bias_init, bias_init, size=topology.sizes[k]).astype(dtype)
    return params


def input_voltages(x: np.ndarray, gain: float) -> np.ndarray:
    """Voltages of the input sources: ``gain * [x, -x]`` (signed inputs from non-negative conductances)."""
    return gain * np.concatenate([x, -x], axis=1)


def power(
    params: dict[str, np.ndarray], v_in: np.ndarray, layers: list[np.ndarray]
) -> np.ndarray:
    """Power function P per sample, shape (batch,). Squares are expanded, never broadcast to (B, n, m)."""
    depth = len(layers)
    nodes = [v_in, *layers]
    total = np.zeros(v_in.shape[0], dtype=v_in.dtype)
    for k in range(1, depth + 1):
        g, pre, post = params[f"g{k}"], nodes[k - 1], nodes[k]
        total += 0.5 * ((pre**2) @ g.sum(axis=1) + (post**2) @ g.sum(axis=0)) - np.einsum(
            "bi,ij,bj->b", pre, g, post, optimize=True
        )
        total -= post @ params[f"b{k}"]
    return total


def local_gradients(
    params: dict[str, np.ndarray],
    v_in: np.ndarray,
    layers: list[np.ndarray],
    workspace: dict | None = None,
) -> dict[str, np.ndarray]:
    """dP/dθ averaged over the batch: 1/2 mean (V_i - V_j)^2 for conductances, -mean V for biases.

    These are the quantities a lab measures across each device (voltage drop) and at each node.
    One matmul per layer writes the whole (n_pre, n_post) result: the two squared terms ride along as two
    extra rows of the operands, so the full-size array is written once instead of three times. Pass a
    ``workspace`` dict (one per system) to reuse the small operand buffers between calls, and the input
    layer's operand while ``v_in`` is the same array object (the phases of one batch share it); at batch 1
    these allocations cost as much as the arithmetic.
    """
    nodes = [v_in, *layers]
    batch = v_in.shape[0]
    ws: dict = {} if workspace is None else workspace
    out: dict[str, np.ndarray] = {}
    for k in range(1, len(layers) + 1):
        pre, post = nodes[k - 1], nodes[k]
        # left = [pre; sum_b pre^2; 1/(2B)], right = [-post/B; 1/(2B); sum_b post^2]
        left = _operand(ws, ("left", k), batch, pre)
        if k > 1 or ws.get("left_of") is not pre:
            left[:batch] = pre
            _sum_of_squares(pre, left[batch])
            if k == 1:
                ws["left_of"] = pre if workspace is not None else None
        right = _operand(ws, ("right", k), batch, post)
        np.multiply(post, -1.0 / batch, out=right[:batch])
        _sum_of_squares(post, right[batch + 1])
        out[f"g{k}"] = left.T @ right
        out[f"b{k}"] = np.add.reduce(right[:batch], axis=0)  # = -mean(post)
    return out


def _sum_of_squares(nodes: np.ndarray, out: np.ndarray) -> None:
    """``out[j] = sum_b nodes[b, j]**2`` (a plain multiply at batch 1, where einsum's set-up dominates)."""
    if nodes.shape[0] == 1:
        np.multiply(nodes[0], nodes[0], out=out)
    else:
        np.einsum("bj,bj->j", nodes, nodes, out=out)


def _operand(ws: dict, key: tuple, batch: int, nodes: np.ndarray) -> np.ndarray:
    """A (batch + 2, n) buffer whose constant row 1/(2 batch) is already in place: row ``batch + 1`` of the
    left operand, row ``batch`` of the right one (they scale the other operand's sum of squares)."""
    buf = ws.get(key)
    if buf is None or buf.shape != (batch + 2, nodes.shape[1]) or buf.dtype != nodes.dtype:
        buf = np.empty((batch + 2, nodes.shape[1]), dtype=nodes.dtype)
        buf[batch + 1 if key[0] == "left" else batch] = 1.0 / (2 * batch)
        ws[key] = buf
        if key[0] == "left" and key[1] == 1:
            ws["left_of"] = None
    return buf
