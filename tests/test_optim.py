"""SGD applies per-layer, per-role learning rates and decays them per epoch."""

from __future__ import annotations

import numpy as np
import pytest

from aeqprop.optim import SGD
from aeqprop.system import ParamSpec

PARAMS = {
    "g1": ParamSpec((2, 2), layer=1), "g2": ParamSpec((2, 1), layer=2),
    "b1": ParamSpec((2,), layer=1, role="bias"), "b2": ParamSpec((1,), layer=2, role="bias"),
}


def test_rates_per_layer_and_role_with_decay() -> None:
    opt = SGD(PARAMS, lr=[0.1, 0.2], lr_bias=[0.01, 0.02], decay=0.5)
    assert [opt.rate(n) for n in ("g1", "g2", "b1", "b2")] == [0.1, 0.2, 0.01, 0.02]
    step = opt.step({"g1": np.ones((2, 2)), "b2": np.full(1, 2.0)})
    np.testing.assert_allclose(step["g1"], -0.1)
    np.testing.assert_allclose(step["b2"], -0.04)
    opt.end_epoch()
    opt.end_epoch()
    assert opt.rate("g2") == pytest.approx(0.05)
    state = opt.state_dict()
    fresh = SGD(PARAMS, lr=[0.1, 0.2], decay=0.5)
    fresh.load_state_dict(state)
    assert fresh.rate("g1") == pytest.approx(0.025)
    assert fresh.rate("b1") == pytest.approx(0.025)  # biases default to the weights' rates


def test_wrong_number_of_layer_rates() -> None:
    with pytest.raises(ValueError, match="one learning rate per layer"):
        SGD(PARAMS, lr=[0.1, 0.2, 0.3])


def test_momentum_follows_the_torch_recurrence_over_two_steps() -> None:
    """v1 = g1, v2 = m·v1 + g2, steps −η·v (rates after a decay), computed by hand."""
    opt = SGD(PARAMS, lr=[0.1, 0.2], decay=0.5, momentum=0.9)
    g1, g2 = np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([[3.0, 1.0], [-1.0, 2.0]])
    first = opt.step({"g1": g1.copy()})
    np.testing.assert_allclose(first["g1"], -0.1 * g1)
    opt.end_epoch()
    second = opt.step({"g1": g2.copy()})
    np.testing.assert_allclose(second["g1"], -0.05 * (0.9 * g1 + g2))
    plain = SGD(PARAMS, lr=[0.1, 0.2], decay=0.5)
    plain.step({"g1": g1.copy()})
    plain.end_epoch()
    assert not np.allclose(plain.step({"g1": g2.copy()})["g1"], second["g1"])


def test_nesterov_steps_along_gradient_plus_momentum_times_velocity() -> None:
    opt = SGD(PARAMS, lr=0.1, momentum=0.5, nesterov=True)
    g1, g2 = np.array([2.0, 4.0]), np.array([-1.0, 1.0])
    np.testing.assert_allclose(opt.step({"b1": g1.copy()})["b1"], -0.1 * (g1 + 0.5 * g1))
    v2 = 0.5 * g1 + g2
    np.testing.assert_allclose(opt.step({"b1": g2.copy()})["b1"], -0.1 * (g2 + 0.5 * v2))


def test_velocity_survives_state_dict_exactly() -> None:
    """A fresh optimizer loaded from the state takes the same next step, bit for bit (float32 kept)."""
    rng = np.random.default_rng(0)
    grads = [{"g1": rng.normal(size=(2, 2)).astype(np.float32), "b2": rng.normal(size=1).astype(np.float32)}
             for _ in range(3)]
    straight = SGD(PARAMS, lr=0.1, momentum=0.9)
    for g in grads[:2]:
        straight.step({k: v.copy() for k, v in g.items()})
    state = straight.state_dict()
    fresh = SGD(PARAMS, lr=0.1, momentum=0.9)
    fresh.load_state_dict(state)
    a = straight.step({k: v.copy() for k, v in grads[2].items()})
    b = fresh.step({k: v.copy() for k, v in grads[2].items()})
    for k in a:
        assert a[k].dtype == np.float32
        np.testing.assert_array_equal(a[k], b[k])
    without = SGD(PARAMS, lr=0.1, momentum=0.9)
    without.load_state_dict({"epoch": 0})  # a checkpoint without velocities starts them afresh
    assert not np.array_equal(without.step({k: v.copy() for k, v in grads[2].items()})["g1"], a["g1"])


@pytest.mark.parametrize("momentum", [-0.1, 1.0, 1.5])
def test_momentum_outside_zero_one_is_refused(momentum) -> None:
    with pytest.raises(ValueError, match="optimizer.momentum"):
        SGD(PARAMS, lr=0.1, momentum=momentum)
    with pytest.raises(ValueError, match="optimizer.nesterov"):
        SGD(PARAMS, lr=0.1, nesterov=True)
