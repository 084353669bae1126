"""The solver's speed paths (cached reciprocals, reused buffers, extrapolated warm starts) change no result."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.resistive import oracle
from aeqprop.simulators.resistive.network import local_gradients

from ..conftest import small_network


@pytest.mark.parametrize("hidden", [(6,), (8, 4), (6, 6, 4)], ids=["1 hidden", "2 hidden", "3 hidden"])
def test_nudged_phases_after_extrapolated_start_reach_the_oracle_equilibrium(hidden, rng) -> None:
    """free, +beta, -beta, back to free: each relax ends at the oracle's equilibrium for that nudge."""
    net = small_network(hidden=hidden, tol_v=1e-12, max_sweeps=100_000)
    x, y = rng.random((4, 5)), rng.random((4, 3))
    net.clamp(x)
    for beta in (0.0, 0.05, -0.05, 0.0, -0.02):
        net.nudge(beta, y if beta else None)
        net.relax()
        _, want = oracle.equilibrium(net, x, beta=beta, target=y if beta else None)
        for got, ref in zip(net._layers, want):
            np.testing.assert_allclose(got, ref, atol=1e-9)


def test_extrapolated_start_saves_sweeps_for_the_opposite_nudge(rng) -> None:
    """The -beta relaxation from the linear-response guess needs fewer sweeps than from the +beta state."""
    x, y = rng.random((8, 5)), rng.random((8, 3))
    sweeps = []
    for extrapolated in (True, False):
        net = small_network(hidden=(16,), tol_v=1e-6, max_sweeps=100_000)
        net.clamp(x)
        net.nudge(0.0)
        net.relax()
        net.nudge(0.05, y)
        net.relax()
        net.nudge(-0.05, y)
        if not extrapolated:
            net._extrapolate = None  # the plain warm start: from the +beta equilibrium as it is
        sweeps.append(net.relax().sweeps)
    assert sweeps[0] < sweeps[1]


def test_stepwise_dynamics_are_not_extrapolated(rng) -> None:
    """step() continues from the present state (continual EP relies on it), even right after a nudge change."""
    net = small_network(hidden=(6,))
    x, y = rng.random((3, 5)), rng.random((3, 3))
    net.clamp(x)
    net.nudge(0.05, y)
    net.relax()
    before = [layer.copy() for layer in net._layers]
    twin = small_network(hidden=(6,))
    twin.restore(net.snapshot())
    twin.clamp(x)
    twin._layers = [layer.copy() for layer in before]
    net.nudge(-0.05, y)
    net.step(1)
    twin.nudge(-0.05, y)
    twin.step(1)
    for a, b in zip(net._layers, twin._layers):
        np.testing.assert_array_equal(a, b)


def test_relax_sees_programmed_parameters(rng) -> None:
    """After program() the cached reciprocal diagonals are rebuilt: the new equilibrium is the oracle's."""
    net = small_network(hidden=(6, 4), tol_v=1e-12, max_sweeps=100_000)
    x = rng.random((3, 5))
    net.clamp(x)
    net.nudge(0.0)
    net.relax()
    net.program({name: 0.05 * rng.random(value.shape) for name, value in net.read_params().items()})
    net.relax()
    _, want = oracle.equilibrium(net, x)
    for got, ref in zip(net._layers, want):
        np.testing.assert_allclose(got, ref, atol=1e-9)


def test_local_gradients_with_workspace_match_fresh_computation(rng) -> None:
    """Reused operand buffers (and the input operand cached per v_in array) give the buffer-free result,
    also when v_in, the layers and the batch size change between calls."""
    params = {"g1": rng.random((7, 4)), "g2": rng.random((4, 3)), "b1": rng.random(4), "b2": rng.random(3)}
    workspace: dict = {}
    for batch in (5, 5, 2, 1, 1, 5):
        v_in = rng.normal(size=(batch, 7))
        for _ in range(2):  # two phases share v_in, their layers differ
            layers = [rng.normal(size=(batch, 4)), rng.normal(size=(batch, 3))]
            got = local_gradients(params, v_in, layers, workspace)
            want = local_gradients(params, v_in, layers)
            for name in want:
                np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-12)
            nodes = [v_in, *layers]
            naive = 0.5 * np.mean((nodes[0][:, :, None] - nodes[1][:, None, :]) ** 2, axis=0)
            np.testing.assert_allclose(got["g1"], naive, rtol=1e-12, atol=1e-12)




@pytest.mark.parametrize("shape", [(7, 5), (3, 600), (600,), (4,), (300, 200)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_window_clip_against_filled_bounds_equals_np_clip(shape, dtype) -> None:
    """clip_window with its bound buffer (blocks of the flat array, one bound buffer of a block's size)
    gives np.clip's bits, NaN included, for both bounds, one bound, and a buffer shared between shapes."""
    from aeqprop.simulators.core import clip_window

    rng = np.random.default_rng(0)
    fill: dict = {}
    for lo, hi in ((0.0, 0.5), (0.1, None), (None, -0.0)):
        g = rng.normal(size=shape).astype(dtype)
        g.flat[0] = np.nan
        params = {"g": g.copy()}
        clip_window(params, ["g"], lo, hi, fill=fill)
        want = np.clip(g, -np.inf if lo is None else lo, np.inf if hi is None else hi)
        np.testing.assert_array_equal(params["g"], want)
        assert params["g"].dtype == dtype
