"""The fast joint relaxation (parameters eliminated between sweeps) reproduces the interleaved solver."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.coupling import relax_interleaved
from aeqprop.simulators.hopfield import FloatingHopfieldConfig
from aeqprop.simulators.hopfield.floating import gram_is_cheaper
from aeqprop.simulators.hopfield.network import energy_gradients
from aeqprop.simulators.hopfield.solver import sweep


def _net(hidden: list[int], eps: float, seed: int):
    cfg = FloatingHopfieldConfig(inputs=40, hidden=hidden, outputs=3, bias_init=0.2, init_gain=1.5,
                                 tol=1e-12, tol_param=1e-12)
    net = cfg.build(np.random.default_rng(seed))
    net.set_coupling({name: eps * (1 + 0.5 * i) for i, name in enumerate(net.spec.params)})
    return net


def _interleaved(net, x, beta, target):
    """The reference: a sweep, then the exact parameter update, on copies of the network's state."""
    params, layers = net.read_params(), [l.copy() for l in net._layers]
    report = relax_interleaved(
        lambda: sweep(params, x, layers, beta, target), lambda: energy_gradients(x, layers), params,
        net._coupling, 1e-12, 1e-12, 100_000,
    )
    return params, layers, report


@pytest.mark.parametrize(("hidden", "batch"), [([30], 4), ([30, 25], 4), ([30, 25, 20], 5), ([6], 40)])
def test_same_equilibrium_as_the_interleaved_solver(rng, hidden, batch) -> None:
    """Over a clamp, moved knobs and nudges, s and θ match the interleaved solver to 1e-10 (1 to 3 hidden layers;
    the last case's batch is wide enough that the interleaved path itself is taken)."""
    net = _net(hidden, 0.01, seed=len(hidden))
    assert gram_is_cheaper(batch, list(net.topology.sizes)) == (batch < 10)
    x, y = rng.uniform(0, 1, (batch, 40)), np.eye(3)[rng.integers(0, 3, batch)]
    net.clamp(x)
    phases = [(0.0, None, None), (0.0, None, 0.1), (0.5, y, None), (-0.3, y, 0.05)]
    for beta, target, knob_noise in phases:
        if knob_noise is not None:
            net.set_controls({k: v + rng.normal(0, knob_noise, v.shape) for k, v in net._coupling.u.items()})
        net.nudge(beta, target)
        ref_params, ref_layers, ref_report = _interleaved(net, x, beta, net._target)
        report = net.relax()
        for mine, ref in zip(net._layers, ref_layers):
            np.testing.assert_allclose(mine, ref, atol=1e-10)
        for name, value in net.read_params().items():
            np.testing.assert_allclose(value, ref_params[name], atol=1e-10)
        assert report.sweeps >= ref_report.sweeps - 1  # the weight test is an upper bound: never stops earlier


def test_float32_network_settles_to_the_same_fixed_point(rng) -> None:
    """In float32 the settled pair still satisfies θ = u − ε∂E/∂θ(s) and s = clip(field) to float32 accuracy."""
    cfg = FloatingHopfieldConfig(inputs=40, hidden=[30], outputs=3, bias_init=0.2, tol=1e-5, tol_param=1e-6,
                                 dtype="float32")
    net = cfg.build(np.random.default_rng(3))
    net.set_coupling({name: 0.05 for name in net.spec.params})
    x = rng.uniform(0, 1, (5, 40)).astype(np.float32)
    net.clamp(x)
    net.relax()
    theta, (s1, s2) = net.read_params(), net._layers
    assert theta["w1"].dtype == np.float32 and s1.dtype == np.float32
    grads = energy_gradients(x, [s1, s2])
    for name, value in theta.items():
        np.testing.assert_allclose(value, net._coupling.u[name] - 0.05 * grads[name], atol=1e-5)
    np.testing.assert_allclose(s1, np.clip(x @ theta["w1"] + theta["b1"] + s2 @ theta["w2"].T, 0, 1), atol=1e-4)
