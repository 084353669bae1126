"""Cross-validation of two solutions of the same network: which node disagrees most, and by how much is allowed.

Used by the tests (ngspice against the block-coordinate-descent solver) and by the speed benchmark, which
checks that the two agree before timing them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aeqprop.system import AeqpropError

from .netlist import node
from .verify import node_currents


class CrossValidationError(AeqpropError):
    """Two solvers disagree about a node's voltage by more than the allowed tolerance."""


@dataclass(frozen=True)
class Mismatch:
    """The worst-disagreeing node: where it is, both voltages, and their difference (V)."""

    layer: int
    index: int
    sample: int
    expected_v: float
    actual_v: float

    @property
    def difference_v(self) -> float:
        return abs(self.actual_v - self.expected_v)

    def describe(self, expected: str = "solver", actual: str = "ngspice") -> str:
        return (
            f"node {node(self.layer, self.index)} (layer {self.layer}, index {self.index}, sample {self.sample}): "
            f"{actual} {self.actual_v:.12g} V, {expected} {self.expected_v:.12g} V, "
            f"difference {self.difference_v:.3g} V"
        )


def worst_mismatch(expected: list[np.ndarray], actual: list[np.ndarray]) -> Mismatch:
    """The node (over all layers and samples) where ``actual`` is furthest from ``expected``."""
    if len(expected) != len(actual):
        raise ValueError(f"{len(expected)} layers against {len(actual)}")
    best: Mismatch | None = None
    for k, (ref, got) in enumerate(zip(expected, actual, strict=True), start=1):
        if ref.shape != got.shape:
            raise ValueError(f"layer {k}: shapes {ref.shape} and {got.shape} differ")
        if ref.size == 0:
            continue
        diff = np.abs(got - ref)
        b, j = (int(v) for v in np.unravel_index(int(np.argmax(diff)), diff.shape))
        if best is None or diff[b, j] > best.difference_v:
            best = Mismatch(k, j, b, float(ref[b, j]), float(got[b, j]))
    if best is None:
        raise ValueError("no nodes to compare")
    return best


def assert_agree(
    expected: list[np.ndarray], actual: list[np.ndarray], tol_v: float,
    expected_name: str = "solver", actual_name: str = "ngspice",
) -> Mismatch:
    """Raise :class:`CrossValidationError` naming the worst node if any differs by more than ``tol_v`` volts."""
    worst = worst_mismatch(expected, actual)
    if not worst.difference_v <= tol_v:
        raise CrossValidationError(
            f"{actual_name} and {expected_name} disagree beyond {tol_v:.3g} V "
            f"at {worst.describe(expected_name, actual_name)}"
        )
    return worst


def diode_offset_bound(
    params: dict[str, np.ndarray], v_in: np.ndarray, layers: list[np.ndarray], g_on_s: float,
    beta: float = 0.0, target: np.ndarray | None = None,
) -> float:
    """Largest voltage by which near-ideal diodes (on-conductance ``g_on_s``) can move any node (V).

    At the ideal solution ``layers``, a diode that conducts carries the current i that Kirchhoff's law leaves
    at its node. A behavioural diode carrying i holds its node at -i/G_on instead of 0 (to first order, since
    i itself changes by O(1/G_on)). Every other node is a conductance-weighted mean of its neighbours and of
    sources that do not move (inputs, targets, bias currents), so by the maximum principle no node moves more
    than the largest clamp offset: max |i| / G_on. Valid for beta >= 0 (a negative nudge is a negative
    conductance, for which the maximum principle does not hold).
    """
    if beta < 0:
        raise ValueError("the maximum-principle bound needs beta >= 0")
    nodes = [v_in, *layers]
    largest = 0.0
    for k in range(1, len(layers)):
        inject, _ = node_currents(params, nodes, k, beta, target)
        largest = max(largest, float(np.abs(inject).max()) if inject.size else 0.0)
    return largest / g_on_s


__all__ = ["CrossValidationError", "Mismatch", "assert_agree", "diode_offset_bound", "worst_mismatch"]
