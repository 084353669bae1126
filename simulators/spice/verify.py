"""Independent check of an operating point returned by ngspice: sources, Kirchhoff's current law, diode laws.

ngspice can report success with a wrong answer (warm-started ``.dc`` sweeps with tiny emission coefficients
land volts away from the solution; a node with no DC path is quietly given a value). So every state read back
is checked against the circuit it was asked to solve: each input node must sit at its source voltage, the
currents of the linear elements must balance at every output node, and at every hidden node the current left
over for the diode must be one that the diode model carries at that node's voltage. A failure names the node.
"""

from __future__ import annotations

import numpy as np
from aeqprop.simulators.resistive.network import Topology

from aeqprop.system import NotSettled

from .diodes import DiodeModel
from .netlist import SolverOptions, floating_nodes, input_node, node

#: Slack on ngspice's own tolerances: a converged point is within them; a wrong one is off by far more.
TOLERANCE_FACTOR = 10.0


def _describe(name: str, layer: int, index: int, sample: int) -> str:
    return f"node {name} (layer {layer}, index {index}, sample {sample})"


def check_inputs(v_expected: np.ndarray, v_read: np.ndarray) -> None:
    """Every input node must read its source voltage (catches a sweep point paired with the wrong sample)."""
    err = np.abs(v_read - v_expected)
    tol = 1e-9 * np.maximum(1.0, np.abs(v_expected))
    if np.any(err > tol):
        b, j = np.unravel_index(int(np.argmax(err - tol)), err.shape)
        raise NotSettled(
            f"ngspice returned a wrong state: input node {input_node(int(j))} (sample {b}) reads "
            f"{v_read[b, j]:.9g} V, its source is {v_expected[b, j]:.9g} V"
        )


def node_currents(
    params: dict[str, np.ndarray], nodes: list[np.ndarray], k: int, beta: float, target: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """Current injected into each node of layer k by its linear elements and sources, and the sum of their sizes.

    ``nodes`` holds the input voltages then layers 1..L, each (batch, n). The second array (the sum of the
    magnitudes of every current into the node) sets the scale for the tolerance of the first.
    """
    depth = len(nodes) - 1
    g_in, pre, here = params[f"g{k}"], nodes[k - 1], nodes[k]
    col = g_in.sum(axis=0)
    inject = pre @ g_in - here * col + params[f"b{k}"]
    scale = np.abs(pre) @ g_in + np.abs(here) * col + np.abs(params[f"b{k}"])
    if k < depth:
        g_out, post = params[f"g{k + 1}"], nodes[k + 1]
        row = g_out.sum(axis=1)
        inject += post @ g_out.T - here * row
        scale += np.abs(post) @ g_out.T + np.abs(here) * row
    elif beta != 0.0:
        assert target is not None
        inject += beta * (target - here)
        scale += abs(beta) * (np.abs(target) + np.abs(here))
    return inject, scale


def check_state(
    topology: Topology,
    params: dict[str, np.ndarray],
    v_in: np.ndarray,
    layers: list[np.ndarray],
    beta: float,
    target: np.ndarray | None,
    diode: DiodeModel | None,
    options: SolverOptions,
) -> float:
    """Raise :class:`NotSettled` naming the worst node if the state is not the circuit's operating point.

    Returns the largest current imbalance at the output nodes (A), the residual of a good solve.
    """
    nodes = [v_in, *layers]
    depth = topology.depth
    held = floating_nodes(params, depth)
    worst: tuple[float, str, bool] | None = None
    residual = 0.0
    for k in range(1, depth + 1):
        inject, scale = node_currents(params, nodes, k, beta, target)
        here = nodes[k]
        tol_i = TOLERANCE_FACTOR * (options.reltol * scale + options.abstol_a) + 1e-12 * scale
        if k == depth or diode is None:
            bad = np.abs(inject) > tol_i
            if k == depth:
                residual = float(np.abs(inject).max()) if inject.size else 0.0
        else:
            excitatory = np.arange(here.shape[1]) < here.shape[1] // 2
            # Excitatory diodes run ground -> node (drop -V, they inject i); inhibitory node -> ground (drop V).
            vd = np.where(excitatory, -here, here)
            current = np.where(excitatory, -inject, inject)
            tol_v = TOLERANCE_FACTOR * (options.reltol * np.abs(here) + options.vntol_v)
            bad = ~diode.obeys(vd, current, tol_i, tol_v)
        for layer, index in held:  # held at 0 V by a source, which takes whatever current is left
            if layer == k:
                bad[:, index] = False
        if np.any(bad):
            excess = np.where(bad, np.abs(inject) / np.maximum(tol_i, 1e-300), -np.inf)
            b, j = (int(v) for v in np.unravel_index(int(np.argmax(excess)), excess.shape))
            where = _describe(node(k, j), k, j, b)
            at_diode = not (k == depth or diode is None)
            if not at_diode:
                what = f"currents do not balance: {inject[b, j]:.4g} A left over (tolerance {tol_i[b, j]:.3g} A)"
            else:
                what = (f"V = {here[b, j]:.6g} V, so its diode has a drop of {vd[b, j]:.6g} V, yet Kirchhoff's "
                        f"current law needs it to carry {current[b, j]:.4g} A (anode to cathode), which the "
                        "diode model does not do at that drop")
            if worst is None or float(excess[b, j]) > worst[0]:
                worst = (float(excess[b, j]), f"{where}: {what}", at_diode)
    if worst is not None:
        hint = (
            " (a known failure of warm-started .dc sweeps with tiny diode emission coefficients; use a real N or "
            "the behavioural diode, or tighten system.reltol)" if worst[2] else ""
        )
        raise NotSettled(f"ngspice returned a state that is not the circuit's operating point at {worst[1]}{hint}")
    return residual


__all__ = ["TOLERANCE_FACTOR", "check_inputs", "check_state", "node_currents"]
