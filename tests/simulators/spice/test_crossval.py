"""ngspice against aeqprop's own solvers on the same network: linear to 1e-9 V, near-ideal diodes within the
bound their on-conductance implies; a disagreement names the node."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.resistive import oracle
from aeqprop.simulators.resistive.network import input_voltages
from aeqprop.simulators.spice import SpiceNetwork
from aeqprop.simulators.spice.crossval import (
    CrossValidationError,
    assert_agree,
    diode_offset_bound,
    worst_mismatch,
)

from .conftest import network_pair

LINEAR_TOL_V = 1e-9


def _solve_spice(net: SpiceNetwork, x: np.ndarray, beta: float = 0.0, y: np.ndarray | None = None) -> list[np.ndarray]:
    net.clamp(x)
    net.nudge(beta, y)
    net.relax()
    return net.node_voltages()


def _linear_solution(params: dict[str, np.ndarray], sizes: tuple[int, ...], v_in: np.ndarray, beta: float,
                     y: np.ndarray | None) -> list[np.ndarray]:
    """Kirchhoff's law as one dense linear system over all free nodes (no diodes): an exact, independent solver."""
    depth = len(sizes) - 1
    offsets = np.cumsum([0, *sizes[1:]])
    n = offsets[-1]
    lap = np.zeros((n, n))
    rhs = np.tile(np.concatenate([params[f"b{k}"] for k in range(1, depth + 1)]), (v_in.shape[0], 1))
    rhs[:, : sizes[1]] += v_in @ params["g1"]
    lap[np.arange(sizes[1]), np.arange(sizes[1])] += params["g1"].sum(axis=0)
    for k in range(2, depth + 1):
        g = params[f"g{k}"]
        a, b = slice(offsets[k - 2], offsets[k - 1]), slice(offsets[k - 1], offsets[k])
        lap[a, a] += np.diag(g.sum(axis=1))
        lap[b, b] += np.diag(g.sum(axis=0))
        lap[a, b] -= g
        lap[b, a] -= g.T
    out = slice(offsets[-2], offsets[-1])
    lap[out, out] += beta * np.eye(sizes[-1])
    if beta:
        rhs[:, out] += beta * y
    volts = np.linalg.solve(lap, rhs.T).T
    return [volts[:, offsets[k - 1] : offsets[k]] for k in range(1, depth + 1)]


@pytest.mark.parametrize("beta", [0.0, 0.7, -0.3])
def test_single_layer_linear_network_matches_block_coordinate_descent(ngspice, beta, rng) -> None:
    """Inputs straight to outputs (no hidden layer, so no diode): ngspice and the resistive solver agree to 1e-9 V."""
    spice, resistive = network_pair(hidden=[], outputs=4)
    x, y = rng.random((5, 6)), rng.random((5, 4))
    got = _solve_spice(spice, x, beta, y)
    _, want = oracle.equilibrium(resistive, x, beta=beta, target=y)
    assert_agree(want, got, LINEAR_TOL_V)


@pytest.mark.parametrize("beta", [0.0, 0.5, -0.2])
def test_deep_linear_network_matches_an_exact_linear_solve(ngspice, beta, rng) -> None:
    """Two hidden layers with the diodes left out: ngspice agrees with a dense solve of Kirchhoff's law to 1e-9 V."""
    spice, _ = network_pair(hidden=[8, 6])
    linear = SpiceNetwork(spice.topology, spice.read_params(), diode="none")
    x, y = rng.random((4, 6)), rng.random((4, 3))
    got = _solve_spice(linear, x, beta, y)
    v_in = input_voltages(x, spice.topology.input_gain)
    want = _linear_solution(spice.read_params(), spice.topology.sizes, v_in, beta, y)
    worst = assert_agree(want, got, LINEAR_TOL_V, expected_name="dense solve")
    assert worst.difference_v < LINEAR_TOL_V


@pytest.mark.parametrize("g_on", [1e12, 1e5])
@pytest.mark.parametrize("beta", [0.0, 0.5])
def test_near_ideal_diodes_agree_within_their_clamp_offset(ngspice, g_on, beta, rng) -> None:
    """Behavioural diodes I = G_on max(V, 0) against ideal ones: within max|i_diode|/G_on (+1e-9 V).

    The bound (see ``diode_offset_bound``): a conducting diode holds its node at -i/G_on instead of 0 and, by
    the maximum principle, no other node moves further. With G_on = 1e5 the offset is large enough to see, and
    the test also checks that the bound is tight (the disagreement reaches at least half of it).
    """
    spice, resistive = network_pair(hidden=[10, 6], g_on=g_on)
    x, y = rng.random((5, 6)), rng.random((5, 3))
    got = _solve_spice(spice, x, beta, y)
    v_in, want = oracle.equilibrium(resistive, x, beta=beta, target=y)
    bound = diode_offset_bound(resistive.read_params(), v_in, want, g_on, beta, y)
    assert bound > 0, "no diode conducts: the test would not exercise the diode model"
    worst = assert_agree(want, got, 1.01 * bound + LINEAR_TOL_V)
    if g_on < 1e8:
        assert worst.difference_v > 0.5 * bound


def test_a_disagreement_names_the_node(ngspice, rng) -> None:
    """A current added at output 2 of the ngspice copy moves that node most: the error names n2_2, layer 2."""
    spice, resistive = network_pair(hidden=[8])
    spice.program({"b2": np.array([0.0, 0.0, 1e-3])})
    x = rng.random((3, 6))
    got = _solve_spice(spice, x)
    _, want = oracle.equilibrium(resistive, x)
    assert worst_mismatch(want, got).difference_v > 1e-6
    with pytest.raises(CrossValidationError, match=r"node n2_2 \(layer 2, index 2, sample \d\)"):
        assert_agree(want, got, LINEAR_TOL_V)
