"""Continual EP: stepwise relaxation of the resistive network, and C-EP's total update equals EP's."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.resistive import ResistiveNetwork, Topology
from aeqprop.simulators.resistive.network import init_params

from aeqprop.continual import ContinualEP
from aeqprop.data import load_digits
from aeqprop.optim import SGD
from aeqprop.rules import EquilibriumPropagation
from aeqprop.trainer import Trainer, TrainSettings, evaluate

from .conftest import small_network


def positive_network(seed: int = 0) -> ResistiveNetwork:
    """Every conductance well inside its window, so no update is clipped (clipping is not linear)."""
    rng = np.random.default_rng(seed)
    topo = Topology((10, 6, 4, 3), 2.0)
    params = init_params(topo, rng, 1.0, 0.1, np.dtype(np.float64))
    for k in (1, 2, 3):
        params[f"g{k}"] = rng.uniform(0.2, 1.0, size=params[f"g{k}"].shape)
    return ResistiveNetwork(topo, params, tol_v=1e-12, max_sweeps=100_000)


def test_step_runs_exactly_n_sweeps_and_reaches_relax(rng) -> None:
    """step(n) spends n sweeps, reports not settled early on, and many steps land on relax()'s equilibrium."""
    net = small_network(hidden=(6, 4), tol_v=1e-12)
    x, y = rng.random((3, 5)), rng.random((3, 3))
    net.clamp(x)
    net.nudge(0.0)
    net.relax()
    net.nudge(0.5, y)
    first = net.step(1)
    assert first.sweeps == 1 and not first.settled
    for _ in range(200):
        net.step(1)
    stepped = net.read_outputs()
    net.relax()
    np.testing.assert_allclose(stepped, net.read_outputs(), atol=1e-10)


def test_step_needs_stepwise_capability(rng) -> None:
    """A network configured without 'stepwise' refuses step()."""
    from aeqprop.system import CapabilityError

    net = small_network(offers=["local", "program"])
    net.clamp(rng.random((2, 5)))
    with pytest.raises(CapabilityError, match="stepwise"):
        net.step(1)


@pytest.mark.parametrize("steps", [40, 200])
def test_small_rate_cep_total_update_equals_ep_update(steps) -> None:
    """With a tiny rate the C-EP increments telescope to one-sided EP's update (same rate, same beta)."""
    rng = np.random.default_rng(3)
    x, y = rng.random((4, 5)), rng.random((4, 3))
    lr = 1e-7
    ep_net, cep_net = positive_network(), positive_network()
    before = ep_net.read_params()
    EquilibriumPropagation("one-sided", 0.5, SGD(ep_net.spec.params, lr), rng).train_step(ep_net, x, y)
    ContinualEP(0.5, steps, SGD(cep_net.spec.params, lr), rng).train_step(cep_net, x, y)
    ep_after, cep_after = ep_net.read_params(), cep_net.read_params()
    for name in before:
        ep_delta = ep_after[name] - before[name]
        cep_delta = cep_after[name] - before[name]
        assert np.linalg.norm(ep_delta) > 0
        assert np.linalg.norm(cep_delta - ep_delta) < 1e-4 * np.linalg.norm(ep_delta), name


def test_cep_with_too_few_steps_differs_from_ep() -> None:
    """One sweep does not settle the nudged phase: the telescoped sum then falls short of EP (the check bites)."""
    rng = np.random.default_rng(3)
    x, y = rng.random((4, 5)), rng.random((4, 3))
    ep_net, cep_net = positive_network(), positive_network()
    before = ep_net.read_params()
    EquilibriumPropagation("one-sided", 0.5, SGD(ep_net.spec.params, 1e-7), rng).train_step(ep_net, x, y)
    ContinualEP(0.5, 1, SGD(cep_net.spec.params, 1e-7), rng).train_step(cep_net, x, y)
    ep_delta = ep_net.read_params()["g1"] - before["g1"]
    cep_delta = cep_net.read_params()["g1"] - before["g1"]
    assert np.linalg.norm(cep_delta - ep_delta) > 1e-3 * np.linalg.norm(ep_delta)


def test_cep_learns_digits_subset() -> None:
    """Two epochs of C-EP (the shipped recipe) on 600 digits beat 50 % test accuracy (chance 10 %; a
    diverging C-EP, e.g. with EP-sized rates, collapses to ~10 %)."""
    from dataclasses import replace

    from aeqprop.simulators.resistive import ResistiveConfig

    data = load_digits()
    data = replace(data, x_train=data.x_train[:600], y_train=data.y_train[:600])
    rng = np.random.default_rng(0)
    net = ResistiveConfig(inputs=64, hidden=[128], outputs=10, input_gain=40.0).build(rng)
    rule = ContinualEP(2.0, 4, SGD(net.spec.params, [1e-4, 3e-3]), rng, random_sign=True)
    trainer = Trainer(net, rule, data, TrainSettings(epochs=2, batch_size=4, log=None), rng)
    trainer.fit()
    assert evaluate(rule, net, data.x_test, data.y_test, 500) > 0.5
