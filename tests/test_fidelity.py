"""Higher-order and Cauchy estimators against the oracle of a smooth network; the fidelity harness itself."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.smooth import SmoothConfig, oracle

from aeqprop.estimators import estimate_gradient
from aeqprop.fidelity import bias_orders, format_table, measure, parse_estimator, relative_error, sweep
from aeqprop.system import CapabilityError

from .conftest import small_network


def smooth_network(read_noise: float = 0.0, seed: int = 0):
    cfg = SmoothConfig(inputs=5, hidden=[6, 4], outputs=3, init_gain=1.5, tol=1e-14, max_sweeps=100_000,
                       read_noise=read_noise)
    return cfg.build(np.random.default_rng(seed))


@pytest.fixture(scope="module")
def problem():
    """A two-hidden-layer tied tanh network, a batch and its true gradient (implicit differentiation)."""
    net = smooth_network()
    rng = np.random.default_rng(1)
    x, y = rng.random((4, 5)), rng.random((4, 3))
    return net, x, y, oracle.gradient(net, x, y)


def test_oracle_matches_finite_differences(problem) -> None:
    """The implicit-differentiation oracle agrees with central differences of the true loss."""
    net, x, y, truth = problem
    base = net.read_params()
    for name in ("w1", "w3", "b2"):
        for idx in [(0, 0), (1, 2)] if base[name].ndim == 2 else [(0,), (3,)]:
            plus = {k: v.copy() for k, v in base.items()}
            minus = {k: v.copy() for k, v in base.items()}
            plus[name][idx] += 1e-6
            minus[name][idx] -= 1e-6
            fd = (oracle.loss(net, x, y, plus) - oracle.loss(net, x, y, minus)) / 2e-6
            assert fd == pytest.approx(truth[name][idx], rel=1e-5, abs=1e-9)


def test_stencil_beats_centered_beats_one_sided_tenfold(problem) -> None:
    """At beta = 0.05 each order step cuts the error against the oracle at least tenfold (the issue's bar)."""
    net, x, y, truth = problem
    err = {e: relative_error(estimate_gradient(net, x, y, e, 0.05).gradient, truth)
           for e in ("one-sided", "centered", "stencil")}
    assert err["centered"] * 10 <= err["one-sided"]
    assert err["stencil"] * 10 <= err["centered"]


@pytest.mark.parametrize("label,order", [("one-sided", 1), ("centered", 2), ("stencil", 4), ("cauchy-4", 4),
                                         ("cauchy-6", 6)])
def test_bias_falls_with_the_estimators_order(problem, label, order) -> None:
    """The log-log slope of bias against beta is the estimator's order (within 0.5)."""
    net, x, y, truth = problem
    points = [measure(net, x, y, truth, label, beta) for beta in (0.04, 0.02, 0.01)]
    assert bias_orders(points)[label] == pytest.approx(order, abs=0.5)


def test_cauchy_uses_n_complex_nudges_and_is_real(problem) -> None:
    """An 8-point Cauchy estimate costs 9 relaxations, is real, and is closer than the stencil at the same beta."""
    net, x, y, truth = problem
    est = estimate_gradient(net, x, y, "cauchy", 0.1, points=8)
    assert est.relaxations == 9
    assert all(not np.iscomplexobj(v) for v in est.gradient.values())
    stencil = estimate_gradient(net, x, y, "stencil", 0.1)
    assert relative_error(est.gradient, truth) < relative_error(stencil.gradient, truth) / 10


def test_cauchy_needs_complex_capability() -> None:
    """The resistive network (ideal diodes, not holomorphic) refuses complex nudges."""
    net = small_network()
    rng = np.random.default_rng(0)
    with pytest.raises(CapabilityError, match="complex"):
        estimate_gradient(net, rng.random((2, 5)), rng.random((2, 3)), "cauchy", 0.1)


def test_read_noise_spread_falls_as_one_over_sqrt_reads() -> None:
    """Under read noise, 16 averaged reads cut the estimate's spread about fourfold; the bias stays put."""
    net = smooth_network(read_noise=1e-3)
    rng = np.random.default_rng(2)
    x, y = rng.random((4, 5)), rng.random((4, 3))
    truth = oracle.gradient(net, x, y)
    one, many = sweep(net, x, y, truth, ["centered"], [0.05], reads=(1, 16), repeats=30, seed=3)
    assert 2.5 < one.spread / many.spread < 6.0
    assert many.bias < one.bias


def test_harness_table_and_labels(problem) -> None:
    """Labels round-trip (cauchy-N) and the table has a line per point; unknown labels are refused."""
    net, x, y, truth = problem
    assert parse_estimator("cauchy-6") == ("cauchy", 6)
    with pytest.raises(ValueError, match="unknown estimator"):
        parse_estimator("backprop")
    points = sweep(net, x, y, truth, ["centered", "cauchy-4"], [0.05, 0.1])
    lines = format_table(points).splitlines()
    assert len(lines) == 2 + 4
    assert points[0].cosine > 0.99
