"""Netlist writer: the layered resistive network of :mod:`aeqprop.simulators.resistive.network` as SPICE text.

Circuit (node names in brackets): input sources ``i<j>`` at ``gain*[x, -x]``; free nodes ``n<k>_<j>`` of
layer k = 1..L (layer L = outputs); a resistor 1/g for every nonzero conductance; a diode to ground on every
hidden node (anode at ground for the V >= 0 half, at the node for the V <= 0 half); a current source for every
nonzero bias; and, when nudged, a behavioural current ``beta*(y - V)`` into each output node, which is a
conductance beta to a source at the target for either sign of beta.

A batch of B inputs is ONE ``.dc`` sweep of a dummy source ``vss`` over 0..B-1: every input (and target)
source is ``pwl(v(ss), 0, a_0, 1, a_1, ...)``, so ngspice sets the matrix up once and warm-starts each
point from the previous one. The text comes in three parts that change at different rates (parameters on
``program``, inputs on ``clamp``, nudge on every relaxation) so a system can cache the first two.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from aeqprop.simulators.resistive.network import Topology

from .diodes import DiodeModel

SWEEP_SOURCE = "vss"
SWEEP_NODE = "ss"


@dataclass(frozen=True)
class SolverOptions:
    """ngspice convergence settings: relative tolerance, voltage and current floors, Newton iteration caps."""

    reltol: float = 1e-6
    vntol_v: float = 1e-9
    abstol_a: float = 1e-15
    itl1: int = 200
    itl2: int = 200

    def card(self) -> str:
        return (
            f".options reltol={_fmt(self.reltol)} vntol={_fmt(self.vntol_v)} abstol={_fmt(self.abstol_a)} "
            f"itl1={self.itl1} itl2={self.itl2} temp=27 tnom=27"
        )


def _fmt(value: float) -> str:
    return repr(float(value))


def node(layer: int, index: int) -> str:
    """Name of free node ``index`` of layer ``layer`` (1-based layers; the last layer holds the outputs)."""
    return f"n{layer}_{index}"


def input_node(index: int) -> str:
    return f"i{index}"


def _pwl(values: np.ndarray) -> str:
    """``pwl(v(ss), 0, a0, 1, a1, ...)``; a single sample is a constant (pwl needs two points)."""
    if values.shape[0] == 1:
        return _fmt(values[0])
    pairs = ", ".join(f"{b}, {_fmt(v)}" for b, v in enumerate(values.tolist()))
    return f"pwl(v({SWEEP_NODE}), {pairs})"


def floating_nodes(params: dict[str, np.ndarray], depth: int) -> list[tuple[int, int]]:
    """Hidden nodes with no conductance at all: the resistive solver holds them at 0 V, so does the netlist."""
    out = []
    for k in range(1, depth):
        total = params[f"g{k}"].sum(axis=0) + params[f"g{k + 1}"].sum(axis=1)
        out.extend((k, int(j)) for j in np.flatnonzero(total == 0))
    return out


def parameter_section(topology: Topology, params: dict[str, np.ndarray], diode: DiodeModel | None) -> str:
    """Resistors, diodes, bias sources and holds of isolated nodes: everything ``program`` changes.

    ``diode=None`` leaves the diodes out: a purely linear network, for cross-validation against exact solvers.
    """
    depth = topology.depth
    lines: list[str] = []
    card = diode.model_card() if diode is not None else ""
    if card:
        lines.append(card)
    for k in range(1, depth + 1):
        g = params[f"g{k}"]
        rows, cols = np.nonzero(g)
        resist = (1.0 / g[rows, cols]).tolist()
        pre = input_node if k == 1 else (lambda i, k=k: node(k - 1, i))
        lines.extend(
            f"R{k}_{i}_{j} {pre(i)} {node(k, j)} {_fmt(r)}"
            for i, j, r in zip(rows.tolist(), cols.tolist(), resist, strict=True)
        )
    for k in range(1, depth if diode is not None else 1):
        half = topology.sizes[k] // 2
        for j in range(topology.sizes[k]):
            if j < half:  # V >= 0: conducts from ground into the node when V < 0
                lines.append(diode.element(f"d{k}_{j}", "0", node(k, j)))
            else:  # V <= 0: conducts from the node to ground when V > 0
                lines.append(diode.element(f"d{k}_{j}", node(k, j), "0"))
    for k in range(1, depth + 1):
        b = params[f"b{k}"]
        # "I 0 n DC b" drives b from ground through the source into n: the bias injected into the node.
        lines.extend(f"IB{k}_{j} 0 {node(k, j)} DC {_fmt(b[j])}" for j in np.flatnonzero(b).tolist())
    lines.extend(f"VZ{k}_{j} {node(k, j)} 0 DC 0" for k, j in floating_nodes(params, depth))
    return "\n".join(lines)


def input_section(v_in: np.ndarray) -> str:
    """One voltage source per input node, driven by the sweep index: ``v_in`` has shape (batch, n_sources)."""
    return "\n".join(f"BI{j} {input_node(j)} 0 V = {_pwl(v_in[:, j])}" for j in range(v_in.shape[1]))


def nudge_section(topology: Topology, beta: float, target: np.ndarray | None) -> str:
    """A current ``beta*(y - V)`` into every output (nothing when beta = 0)."""
    if beta == 0.0:
        return ""
    assert target is not None
    depth = topology.depth
    return "\n".join(
        f"BN{j} 0 {node(depth, j)} I = {_fmt(beta)}*({_pwl(target[:, j])} - v({node(depth, j)}))"
        for j in range(topology.sizes[-1])
    )


def saved_vectors(topology: Topology) -> list[str]:
    """Every node voltage the solve reads back: the input nodes (to check the sources) and all free nodes."""
    names = [input_node(j) for j in range(topology.sizes[0])]
    for k in range(1, topology.depth + 1):
        names.extend(node(k, j) for j in range(topology.sizes[k]))
    return names


def assemble(
    title: str, sections: list[str], options: SolverOptions, saved: list[str], points: int, raw_name: str
) -> str:
    """The whole netlist: sections, sweep source, options, ``.save`` and a control block that always quits."""
    save_lines = [".save v(" + ") v(".join(saved[i : i + 20]) + ")" for i in range(0, len(saved), 20)]
    return "\n".join([
        title.replace("\n", " "),
        *[s for s in sections if s],
        f"{SWEEP_SOURCE} {SWEEP_NODE} 0 DC 0",
        options.card(),
        *save_lines,
        ".control",
        "set filetype=binary",
        f"dc {SWEEP_SOURCE} 0 {points - 1} 1",
        f"write {raw_name}",
        "rusage totiter",
        "quit 0",
        ".endc",
        ".end",
        "",
    ])


__all__ = [
    "SWEEP_NODE",
    "SWEEP_SOURCE",
    "SolverOptions",
    "assemble",
    "floating_nodes",
    "input_node",
    "input_section",
    "node",
    "nudge_section",
    "parameter_section",
    "saved_vectors",
]
