"""Physics of the floating-parameter Hopfield network: joint equilibrium, contract surface, exact snapshots."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.hopfield import FloatingHopfieldConfig
from aeqprop.simulators.hopfield.network import energy_gradients

from aeqprop.system import CapabilityError, NotSettled


def small_hopfield(eps: float = 0.05, seed: int = 0, **kw):
    cfg = FloatingHopfieldConfig(inputs=5, hidden=[6, 4], outputs=3, bias_init=0.2, init_gain=1.5,
                                 tol=1e-12, tol_param=1e-12, **kw)
    net = cfg.build(np.random.default_rng(seed))
    net.set_coupling({name: eps for name in net.spec.params})
    return net


def test_joint_equilibrium_conditions(rng) -> None:
    """Settled (s, θ): every layer is clip(its input, 0, 1) and every θ = u − ε ∂E/∂θ(s) (batch mean)."""
    net = small_hopfield()
    x, y = rng.uniform(0, 1, (7, 5)), np.eye(3)[rng.integers(0, 3, 7)]
    u = {k: v + rng.normal(0, 0.1, v.shape) for k, v in net.read_params().items()}
    net.set_controls(u)
    net.clamp(x)
    net.nudge(0.3, y)
    net.relax()
    theta = net.read_params()
    layers = [l.copy() for l in net._layers]
    grads = energy_gradients(x, layers)
    for name in theta:
        np.testing.assert_allclose(theta[name], u[name] - 0.05 * grads[name], atol=1e-10)
    nodes = [x, *layers]
    for k in (1, 2):
        h = nodes[k - 1] @ theta[f"w{k}"] + theta[f"b{k}"] + nodes[k + 1] @ theta[f"w{k + 1}"].T
        np.testing.assert_allclose(nodes[k], np.clip(h, 0, 1), atol=1e-10)
    h_out = (nodes[2] @ theta["w3"] + theta["b3"] + 0.3 * y) / 1.3
    np.testing.assert_allclose(nodes[3], np.clip(h_out, 0, 1), atol=1e-10)


def test_parameters_float_with_the_input(rng) -> None:
    """With the knobs fixed, a different input moves θ: the parameters are physical degrees of freedom."""
    net = small_hopfield()
    net.clamp(rng.uniform(0, 1, (4, 5)))
    net.relax()
    first = net.read_params()
    net.clamp(rng.uniform(0, 1, (4, 5)))
    net.relax()
    assert max(np.max(np.abs(first[k] - v)) for k, v in net.read_params().items()) > 1e-4


def test_offers_only_the_homeostatic_operations() -> None:
    """No local measurement and no programming: a controller cannot read dE/dθ from this system."""
    net = small_hopfield()
    assert net.spec.capabilities == frozenset({"homeostatic"})
    with pytest.raises(CapabilityError):
        net.read_local()
    with pytest.raises(CapabilityError):
        net.program({"w1": np.zeros((5, 6))})


def test_snapshot_restore_is_exact(rng) -> None:
    """Restoring a snapshot (parameters, knobs, ε, warm state) reproduces the next relaxation bit for bit."""
    net = small_hopfield()
    x = rng.uniform(0, 1, (3, 5))
    net.clamp(x)
    net.relax()
    snap = net.snapshot()
    net.set_controls({k: v + 0.01 for k, v in net.read_params().items()})
    net.relax()
    after = net.read_params()
    other = small_hopfield(seed=5, eps=0.2)
    other.restore(snap)
    other.clamp(x)
    other.set_controls({k: v + 0.01 for k, v in other.read_params().items()})
    other.relax()
    for name, value in after.items():
        np.testing.assert_array_equal(other.read_params()[name], value)


def test_unstable_nudge_is_refused(rng) -> None:
    """β ≤ −1 makes the hard-sigmoid output energy unbounded below: NotSettled says so."""
    net = small_hopfield()
    net.clamp(rng.uniform(0, 1, (2, 5)))
    net.nudge(-1.0, np.zeros((2, 3)))
    with pytest.raises(NotSettled, match="beta=-1 must exceed -1"):
        net.relax()
