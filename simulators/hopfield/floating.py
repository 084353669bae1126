"""Joint relaxation of the floating Hopfield network with the parameters eliminated between sweeps.

The interleaved solver (:func:`aeqprop.simulators.coupling.relax_interleaved`) alternates a state sweep with
the exact parameter update θ ← θ*(s) = u − ε ∂E/∂θ(s). For this energy ∂E/∂w{k} = −(1/B) s_{k-1}ᵀ s_k and
∂E/∂b{k} = −mean_b s_k, so between sweeps the weights are never needed as arrays: with P = s_{k-1}, Q = s_k
from the previous sweep,

    a s_{k-1} W_k   = a s_{k-1} U_k + (ε/B) (s'_{k-1} Pᵀ) Q          (B×B Gram matrix times Q)
    s'_{k+1} W_{k+1}ᵀ = s'_{k+1} U_{k+1}ᵀ + (ε/B) (s'_{k+1} Q'ᵀ) P'

This module runs *the same iterates* as the interleaved solver (same sweep order, θ of sweep t equal to
θ*(state after sweep t − 1), first sweep on the stored θ), at O(B²n + B·n·m_u) per sweep instead of
O(n_{k-1}·n_k) array work per parameter group: the input's field x·U₁ and its Gram matrix x·xᵀ are computed
once per relaxation. θ is materialised once, at the end, by the same exact update as before.

The one difference is the weights' settling test: max|θ_{t+1} − θ_t| of a weight group would need the full
array, so it is replaced by the upper bound (ε/B) Σ_b (max|P_t[b]|·max|ΔQ[b]| + max|ΔP[b]|·max|Q_{t-1}[b]|)
(from P_tᵀQ_t − P_{t-1}ᵀQ_{t-1} = P_tᵀΔQ + ΔPᵀQ_{t-1}). It can only make the solver stop later, never
earlier, than the exact test; biases are tested exactly. Parameter bounds are not supported (this network
has none): a clipped θ* is no longer linear in the state.

The Gram matrices cost B²·(n_{k-1} + n_k) per weight group and sweep against 2·B·n_{k-1}·n_k for applying
explicit weights, so for batches as wide as the layers (an evaluation batch of 1000) the interleaved solver
is used instead: same iterates, cheaper there.
"""

from __future__ import annotations

import itertools

import numpy as np
from aeqprop.simulators.coupling import ControlCoupling, relax_interleaved

from aeqprop.system import NotSettled, RelaxReport

from .network import energy_gradients
from .solver import sweep


def _update_params(
    params: dict[str, np.ndarray], coupling: ControlCoupling, x: np.ndarray, layers: list[np.ndarray]
) -> float:
    """θ ← θ*(s) in place, exactly as the interleaved solver does; returns the largest change."""
    change = 0.0
    for name, grad in energy_gradients(x, layers).items():
        new = coupling.minimiser(name, grad)
        if new.size:
            change = max(change, float(np.max(np.abs(new - params[name]))))
        params[name] = new
    return change


def _implicit_sweep(
    coupling: ControlCoupling,
    x_field: np.ndarray,
    x_gram: np.ndarray,
    x: np.ndarray,
    layers: list[np.ndarray],
    prev: list[np.ndarray],
    beta: float,
    target: np.ndarray | None,
) -> float:
    """One sweep (odd layers, then even) with θ = θ*(prev) applied through Gram matrices; returns the residual."""
    depth = len(layers)
    batch = x.shape[0]
    u, eps = coupling.u, coupling.eps
    cur_nodes = [x, *layers]
    prev_nodes = [x, *prev]
    residual = 0.0
    for i in list(range(0, depth, 2)) + list(range(1, depth, 2)):
        k = i + 1
        c_in = eps[f"w{k}"] / batch
        if k == 1:
            h = x_field + c_in * (x_gram @ prev_nodes[1])
        else:
            below = cur_nodes[k - 1]
            h = below @ u[f"w{k}"]
            h += c_in * ((below @ prev_nodes[k - 1].T) @ prev_nodes[k])
        h += u[f"b{k}"] + eps[f"b{k}"] * prev_nodes[k].mean(axis=0)
        if k < depth:
            above = cur_nodes[k + 1]
            h += above @ u[f"w{k + 1}"].T
            h += (eps[f"w{k + 1}"] / batch) * ((above @ prev_nodes[k + 1].T) @ prev_nodes[k])
        elif beta != 0.0:
            h += beta * target
            h *= 1.0 / (1.0 + beta)
        np.clip(h, 0.0, 1.0, out=h)
        if h.size:
            residual = max(residual, float(np.max(np.abs(layers[i] - h))))
        layers[i] = h
        cur_nodes[k] = h
    return residual


def _change_bound(coupling: ControlCoupling, x: np.ndarray, layers: list[np.ndarray], prev: list[np.ndarray]) -> float:
    """Exact largest bias change and an upper bound on the largest weight change between θ*(prev) and θ*(layers)."""
    batch = x.shape[0]
    cur_nodes, prev_nodes = [x, *layers], [x, *prev]
    bound = 0.0
    for k in range(1, len(cur_nodes)):
        if not cur_nodes[k].size:
            continue
        d_q = np.abs(cur_nodes[k] - prev_nodes[k]).max(axis=1)
        p_now = np.abs(cur_nodes[k - 1]).max(axis=1) if cur_nodes[k - 1].size else np.zeros(batch)
        total = p_now @ d_q
        if k > 1 and cur_nodes[k - 1].size:
            d_p = np.abs(cur_nodes[k - 1] - prev_nodes[k - 1]).max(axis=1)
            total += d_p @ np.abs(prev_nodes[k]).max(axis=1)
        bound = max(bound, coupling.eps[f"w{k}"] / batch * float(total))
        d_mean = cur_nodes[k].mean(axis=0) - prev_nodes[k].mean(axis=0)
        bound = max(bound, coupling.eps[f"b{k}"] * float(np.max(np.abs(d_mean))))
    return bound


def gram_is_cheaper(batch: int, sizes: list[int]) -> bool:
    """Whether applying θ through B×B Gram matrices costs fewer operations per sweep than explicit weights."""
    gram = sum(batch * batch * (n_in + n_out) for n_in, n_out in itertools.pairwise(sizes))
    explicit = sum(2 * batch * n_in * n_out for n_in, n_out in itertools.pairwise(sizes))
    return gram < explicit


def relax_floating(
    params: dict[str, np.ndarray],
    coupling: ControlCoupling,
    x: np.ndarray,
    layers: list[np.ndarray],
    beta: float,
    target: np.ndarray | None,
    tol_state: float,
    tol_param: float,
    max_sweeps: int,
) -> RelaxReport:
    """Relax (s, θ) jointly; ``layers`` and ``params`` are replaced in place with the settled state and θ*(s)."""
    if not gram_is_cheaper(x.shape[0], [x.shape[1], *(layer.shape[1] for layer in layers)]):
        return relax_interleaved(
            lambda: sweep(params, x, layers, beta, target), lambda: energy_gradients(x, layers), params, coupling,
            tol_state, tol_param, max_sweeps,
        )
    # Sweep 1 runs on the stored θ, exactly as the interleaved solver's first sweep does.
    residual = sweep(params, x, layers, beta, target)
    change = _update_params(params, coupling, x, layers)
    if np.isfinite(residual) and np.isfinite(change) and residual <= tol_state and change <= tol_param:
        return RelaxReport(sweeps=1, residual=max(residual, change))
    x_field = x @ coupling.u["w1"]
    x_gram = x @ x.T
    prev = [layer.copy() for layer in layers]
    for count in range(2, max_sweeps + 1):
        if not (np.isfinite(residual) and np.isfinite(change)):
            break
        residual = _implicit_sweep(coupling, x_field, x_gram, x, layers, prev, beta, target)
        change = _change_bound(coupling, x, layers, prev)
        if residual <= tol_state and change <= tol_param:
            _update_params(params, coupling, x, layers)
            return RelaxReport(sweeps=count, residual=max(residual, change))
        for old, new in zip(prev, layers):
            np.copyto(old, new)
    _update_params(params, coupling, x, layers)
    raise NotSettled(
        f"state and parameters did not settle in {max_sweeps} sweeps (last state change {residual:.3g}, "
        f"parameter change {change:.3g}; tolerances {tol_state:.3g}, {tol_param:.3g}): the coupling eps may be "
        "too large for a stable joint equilibrium"
    )


__all__ = ["gram_is_cheaper", "relax_floating"]
