"""Untied networks: generalized EP vs the oracle, kick-measured Jacobian asymmetry, homeostasis gradient."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.asymmetric import AsymmetricConfig
from aeqprop.simulators.smooth import oracle

from aeqprop.estimators import estimate_gradient
from aeqprop.fidelity import cosine_similarity, relative_error
from aeqprop.homeostasis import JacobianHomeostasis
from aeqprop.system import PhysicalSystem


def untied(asymmetry: float, hidden=(6, 4)):
    cfg = AsymmetricConfig(inputs=5, hidden=list(hidden), outputs=3, init_gain=1.5, asymmetry=asymmetry,
                           tol=1e-13, max_sweeps=100_000)
    return cfg.build(np.random.default_rng(0))


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(1)
    return rng.random((8, 5)), rng.random((8, 3))


def test_untied_network_honours_the_contract(batch) -> None:
    """An AsymmetricNetwork is a PhysicalSystem; read_state has one column per free unit."""
    net = untied(0.5)
    x, _ = batch
    assert isinstance(net, PhysicalSystem)
    assert net.spec.capabilities == {"local", "program", "perturb"}
    net.clamp(x)
    net.nudge(0.0)
    net.relax()
    assert net.read_state().shape == (8, 6 + 4 + 3)
    assert set(net.read_local()) == set(net.spec.params) == {"w1", "w2", "w3", "v2", "v3", "b1", "b2", "b3"}


def test_generalized_ep_is_exact_when_couplings_match(batch) -> None:
    """With v = wᵀ the held-pre reads give the true gradient for forward and backward couplings alike."""
    net = untied(0.0)
    x, y = batch
    est = estimate_gradient(net, x, y, "centered", 1e-3).gradient
    assert relative_error(est, oracle.gradient(net, x, y)) < 1e-4


def test_alignment_falls_with_asymmetry(batch) -> None:
    """The EP estimate drifts from the true gradient (J⁻¹ vs J⁻ᵀ) as the mismatch grows."""
    x, y = batch
    cos = []
    for level in (0.0, 1.0, 2.0):
        net = untied(level)
        cos.append(cosine_similarity(estimate_gradient(net, x, y, "centered", 1e-3).gradient,
                                     oracle.gradient(net, x, y)))
    assert cos[0] > 0.999 > cos[1] > cos[2]


@pytest.mark.parametrize("level", [0.0, 1.0])
def test_kicks_measure_the_jacobian_asymmetry(batch, level) -> None:
    """Averaged over probes, the kick penalty equals τ²·½‖J − Jᵀ‖²_F (zero for matched couplings)."""
    net = untied(level)
    x, _ = batch
    homeostasis = JacobianHomeostasis(net.spec, 1.0)
    params = net.read_params()
    jac = oracle.jacobian(params, oracle.equilibrium(net, x))
    truth = 0.5 * np.mean(np.sum((jac - np.swapaxes(jac, 1, 2)) ** 2, axis=(1, 2))) * 0.1**2
    net.clamp(x)
    net.nudge(0.0)
    net.relax()
    rng = np.random.default_rng(4)
    shape = net.read_state().shape
    measured = np.mean([homeostasis.penalty(net, rng.standard_normal(shape), rng.standard_normal(shape))
                        for _ in range(150)])
    if level == 0:
        assert measured < 1e-6
    else:
        assert measured == pytest.approx(truth, rel=0.25)


def test_homeostasis_gradient_points_down_the_asymmetry(batch) -> None:
    """The SPSA estimate, averaged, aligns with ∇ of τ²‖v − wᵀ‖² and leaves the parameters where it found them."""
    net = untied(1.0, hidden=(6,))
    x, _ = batch
    before = net.read_params()
    mismatch = before["v2"] - before["w2"].T
    truth = {"v2": 2 * 0.01 * mismatch, "w2": -2 * 0.01 * mismatch.T}
    homeostasis = JacobianHomeostasis(net.spec, 1.0, ["w2", "v2"], probes=2, kicks=32)
    rng = np.random.default_rng(5)
    total = {k: np.zeros_like(v) for k, v in truth.items()}
    for _ in range(250):
        for k, v in homeostasis.gradient(net, x, rng).items():
            total[k] += v / 250
    assert cosine_similarity(total, truth) > 0.75
    for name, value in net.read_params().items():
        np.testing.assert_allclose(value, before[name], atol=1e-12)


def test_perturb_needs_a_free_equilibrium(batch) -> None:
    """Kicks start from the free equilibrium: before any free relax there is nothing to kick."""
    net = untied(0.5)
    net.clamp(batch[0])
    with pytest.raises(RuntimeError, match="relax with no nudge first"):
        net.perturb(np.zeros((8, 13)))
