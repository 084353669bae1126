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
