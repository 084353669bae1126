"""Aeqprop learns like gradient descent on the shipped floating substrates (oracle finite differences).

The rule sees only the contract; the oracle modules (true loss, finite-difference gradient and curvature) are
used here to judge the drift, never by the rule.
"""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.hopfield import FloatingHopfieldConfig
from aeqprop.simulators.hopfield import oracle as hopfield_oracle
from aeqprop.simulators.resistive import FloatingResistiveNetwork, Topology
from aeqprop.simulators.resistive import oracle as resistive_oracle

from aeqprop.agnostic import VARIANTS, AgnosticEP, Homeostat


def flat(arrays: dict[str, np.ndarray]) -> np.ndarray:
    return np.concatenate([v.ravel() for v in arrays.values()])


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def hopfield(eps: float):
    cfg = FloatingHopfieldConfig(inputs=5, hidden=[6], outputs=3, bias_init=0.2, init_gain=2.0,
                                 tol=1e-14, tol_param=1e-14, max_sweeps=100_000)
    net = cfg.build(np.random.default_rng(4))
    return net, {name: eps for name in net.spec.params}


def batch(seed: int = 2, n: int = 8, n_in: int = 5):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, n_in)), np.eye(3)[rng.integers(0, 3, n)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_hopfield_drift_aligns_with_true_gradient(variant) -> None:
    """Small β and ε: cos(drift, −∇L) ≥ 0.99 against central finite differences of the true loss."""
    net, eps = hopfield(1e-3)
    x, y = batch()
    grad = flat(hopfield_oracle.gradient_fd(net, x, y))
    rule = AgnosticEP(variant, 1e-2, Homeostat(tolerance=1e-13, max_iterations=100), eps=eps)
    drift = flat(rule.step(net, x, y))
    assert cos(drift, -grad) >= 0.99
    assert np.linalg.norm(drift) / np.linalg.norm(1e-3 * 1e-2 * grad) == pytest.approx(1.0, rel=0.1)


def test_hopfield_step_matches_first_order_prediction() -> None:
    """At a large ε (λ_min(I + ε∇²F) ≈ 0.4) the drift follows −εΔβ(I + ε∇²F)⁻¹∇L better than the plain
    gradient step −εΔβ∇L."""
    eps_value, beta = 0.1, 2e-3
    net, eps = hopfield(eps_value)
    x, y = batch()
    grad = flat(hopfield_oracle.gradient_fd(net, x, y))
    hessian = hopfield_oracle.free_energy_hessian_fd(net, x)
    predicted = -eps_value * beta * np.linalg.solve(np.eye(grad.size) + eps_value * hessian, grad)
    rule = AgnosticEP("centered", beta, Homeostat(tolerance=1e-13, max_iterations=200), eps=eps)
    drift = flat(rule.step(net, x, y))
    assert cos(drift, predicted) >= 0.99
    assert cos(drift, predicted) > cos(drift, -grad)
    assert np.linalg.norm(drift - predicted) <= 0.1 * np.linalg.norm(predicted)


def test_resistive_floating_drift_aligns_with_true_gradient() -> None:
    """The floating-conductance network (foundation solver and energy): centered drift vs FD, cos ≥ 0.99."""
    rng = np.random.default_rng(6)
    topology = Topology((8, 6, 3), 2.0)
    params = {"g1": rng.uniform(0.2, 1.0, (8, 6)) / np.sqrt(8), "g2": rng.uniform(0.2, 1.0, (6, 3)) / np.sqrt(6),
              "b1": rng.uniform(-0.1, 0.1, 6), "b2": rng.uniform(-0.1, 0.1, 3)}
    eps = {name: 1e-4 for name in params}
    net = FloatingResistiveNetwork(topology, params, eps, tol_v=1e-14, tol_param=1e-15, max_sweeps=100_000)
    x, _ = batch(n=6, n_in=4)
    y = rng.uniform(-0.2, 0.2, (6, 3))
    grad = flat(resistive_oracle.gradient_fd(net, x, y))
    rule = AgnosticEP("centered", 1e-2, Homeostat(tolerance=1e-14, max_iterations=100))
    drift = flat(rule.step(net, x, y))
    assert cos(drift, -grad) >= 0.99


def test_drift_gain_scales_the_step_and_keeps_its_direction() -> None:
    """A drift gain G moves the set point by G times the measured drift: same direction as −∇L, G times longer
    (θ₁ and θ₂ are read at the same knobs, so the hold's residual is not amplified)."""
    x, y = batch()
    drifts = {}
    for gain in (1.0, 50.0):
        net, eps = hopfield(1e-4)
        rule = AgnosticEP("centered", 1e-2, Homeostat(tolerance=1e-13, max_iterations=100), eps=eps, drift_gain=gain)
        drifts[gain] = flat(rule.step(net, x, y))
    grad = flat(hopfield_oracle.gradient_fd(hopfield(1e-4)[0], x, y))
    assert cos(drifts[50.0], -grad) >= 0.999
    np.testing.assert_allclose(drifts[50.0], 50.0 * drifts[1.0], rtol=1e-6, atol=1e-9 * np.abs(drifts[50.0]).max())


def test_drift_gain_puts_a_set_point_past_a_declared_bound_on_the_bound() -> None:
    """Conductances are declared ≥ 0: an amplified step that would take one below 0 leaves its set point at 0."""
    rng = np.random.default_rng(6)
    topology = Topology((8, 6, 3), 2.0)
    params = {"g1": rng.uniform(0.0, 0.02, (8, 6)), "g2": rng.uniform(0.2, 1.0, (6, 3)) / np.sqrt(6),
              "b1": np.zeros(6), "b2": np.zeros(3)}
    net = FloatingResistiveNetwork(topology, params, {name: 1e-3 for name in params}, tol_v=1e-12, tol_param=1e-13)
    x, _ = batch(n=6, n_in=4)
    y = rng.uniform(-0.2, 0.2, (6, 3))
    rule = AgnosticEP("centered", 0.5, Homeostat(tolerance=1e-10, max_iterations=200), drift_gain=1e4)
    rule.step(net, x, y)
    g1 = rule.set_point["g1"]
    assert g1.min() == 0.0 and np.count_nonzero(g1 == 0.0) > 0
    assert np.all(g1 >= 0.0)


def test_drift_gain_must_be_positive() -> None:
    with pytest.raises(ValueError, match="drift_gain"):
        AgnosticEP("centered", 0.1, Homeostat(), drift_gain=0.0)
