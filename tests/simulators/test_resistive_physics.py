"""The resistive network's equilibria are the true steady states of the circuit (a convex QP)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from aeqprop.simulators.resistive import oracle
from aeqprop.simulators.resistive.network import input_voltages, power
from aeqprop.simulators.resistive.solver import Coefficients, block_coordinate_descent, diagonals, input_drive
from scipy.optimize import minimize

from aeqprop.system import NotSettled, RelaxReport

from ..conftest import small_network


def _kkt_residual(net, v_in, layers, beta=0.0, target=None) -> float:
    """Largest violation of stationarity/complementarity of P + beta/2||V_L - y||^2 under the diode bounds."""
    params = net.read_params()
    nodes = [v_in, *layers]
    depth = len(layers)
    lows, highs = net.topology.bounds(np.dtype(np.float64))
    worst = 0.0
    for k in range(1, depth + 1):
        v = nodes[k]
        grad = v * params[f"g{k}"].sum(axis=0) - nodes[k - 1] @ params[f"g{k}"] - params[f"b{k}"]
        if k < depth:
            g_next = params[f"g{k + 1}"]
            grad += v * g_next.sum(axis=1) - nodes[k + 1] @ g_next.T
        else:
            if beta:
                grad += beta * (v - target)
        lo, hi = lows[k - 1], highs[k - 1]
        at_lo = np.isclose(v, lo) & np.isfinite(lo)
        at_hi = np.isclose(v, hi) & np.isfinite(hi)
        free = ~(at_lo | at_hi)
        worst = max(worst, np.abs(grad[free]).max(initial=0.0))
        worst = max(worst, (-grad[at_lo]).max(initial=0.0))  # at a lower bound the gradient must be >= 0
        worst = max(worst, grad[at_hi].max(initial=0.0))  # at an upper bound it must be <= 0
        assert np.all(v >= lo - 1e-12) and np.all(v <= hi + 1e-12), "diode bound violated"
    return worst


@pytest.mark.parametrize("hidden", [(6,), (8, 4), (6, 6, 4)], ids=["1 hidden", "2 hidden", "3 hidden"])
@pytest.mark.parametrize("beta", [0.0, 0.7, -0.03])
def test_equilibrium_satisfies_kkt(hidden, beta, rng) -> None:
    """Exact BCD reaches the QP optimum: KKT conditions hold to 1e-8 for any depth and nudge sign."""
    net = small_network(hidden=hidden)
    x, y = rng.random((7, 5)), rng.random((7, 3))
    v_in, layers = oracle.equilibrium(net, x, beta=beta, target=y if beta else None)
    assert _kkt_residual(net, v_in, layers, beta, y) < 1e-8
    # Some diodes must be active, or the test would not exercise the bounds.
    assert any(np.any(l == 0.0) for l in layers[:-1])


def test_equilibrium_agrees_with_lbfgsb(rng) -> None:
    """An independent solver (scipy L-BFGS-B with the diode bounds) finds the same node voltages."""
    net = small_network(hidden=(8, 4))
    x = rng.random((3, 5))
    v_in, layers = oracle.equilibrium(net, x)
    params = net.read_params()
    sizes = [l.shape[1] for l in layers]
    lows, highs = net.topology.bounds(np.dtype(np.float64))

    def unpack(z):
        return [p.reshape(1, -1) for p in np.split(z, np.cumsum(sizes)[:-1])]

    for b in range(x.shape[0]):
        def fun(z, b=b):
            return float(power(params, v_in[b : b + 1], unpack(z))[0])

        bounds = [(None if np.isinf(lo) else lo, None if np.isinf(hi) else hi)
                  for lo, hi in zip(np.concatenate(lows), np.concatenate(highs))]
        res = minimize(fun, np.zeros(sum(sizes)), method="L-BFGS-B", bounds=bounds,
                       options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
        ours = np.concatenate([l[b] for l in layers])
        np.testing.assert_allclose(res.x, ours, atol=1e-5)
        assert fun(ours) <= res.fun + 1e-9  # ours is at least as low as the reference minimum


def test_batch_equals_samples_one_by_one(rng) -> None:
    """Batching is only vectorisation: each sample's equilibrium is unaffected by the others."""
    net = small_network(hidden=(6, 4))
    x = rng.random((5, 5))
    _, batched = oracle.equilibrium(net, x)
    for b in range(5):
        _, single = oracle.equilibrium(net, x[b : b + 1])
        for lb, ls in zip(batched, single):
            np.testing.assert_allclose(lb[b], ls[0], atol=1e-11)


def test_relax_reports_sweeps_and_warm_start_saves_work(rng) -> None:
    """relax() returns a report; relaxing again from a settled state takes a single sweep."""
    net = small_network(hidden=(6,), tol_v=1e-10)
    net.clamp(rng.random((4, 5)))
    net.nudge(0.0)
    first = net.relax()
    assert isinstance(first, RelaxReport) and first.sweeps > 1 and first.residual <= 1e-10
    again = net.relax()
    assert again.sweeps == 1


def test_not_settled_when_budget_too_small(rng) -> None:
    """A relaxation that cannot meet its tolerance raises NotSettled instead of returning a wrong state."""
    net = small_network(hidden=(6, 6), tol_v=1e-14, max_sweeps=2)
    net.clamp(rng.random((2, 5)))
    net.nudge(0.0)
    with pytest.raises(NotSettled, match="did not settle in 2 sweeps"):
        net.relax()


def test_negative_nudge_beyond_output_conductance_is_refused(rng) -> None:
    """beta <= -(total output conductance) makes the energy unbounded: NotSettled, naming the node."""
    net = small_network()
    net.clamp(rng.random((2, 5)))
    net.nudge(-1e6, rng.random((2, 3)))
    with pytest.raises(NotSettled, match="unbounded below: output node"):
        net.relax()


def test_power_decreases_monotonically_over_sweeps(rng) -> None:
    """Each exact block update lowers P: run the solver one sweep at a time from a cold start."""
    net = small_network(hidden=(6, 6, 4))
    params = net.read_params()
    v_in = input_voltages(rng.random((3, 5)), net.topology.input_gain)
    layers = [np.zeros((3, n)) for n in net.topology.sizes[1:]]
    lows, highs = net.topology.bounds(np.dtype(np.float64))
    coeffs = Coefficients(diagonals(params, net.topology.depth), input_drive(params, v_in))
    values = []
    for _ in range(10):
        block_coordinate_descent(params, coeffs, layers, lows, highs, 0.0, None, tol_v=np.inf, max_sweeps=1)
        values.append(float(power(params, v_in, layers).sum()))
    assert all(b <= a + 1e-12 for a, b in itertools.pairwise(values))
    assert values[-1] < values[0]
