"""Device model: ideal limit, pulse response shape, each imperfection at its configured size, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
from aeqprop.simulators.memristor import DeviceArray, DeviceModel
from aeqprop.simulators.memristor.devices import curve, inverse_curve

SHAPE = (200, 100)


def array(seed: int = 0, **kw) -> tuple[DeviceArray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return DeviceArray(DeviceModel(**kw), SHAPE, rng), rng


def test_curve_and_inverse_round_trip_and_linear_limit() -> None:
    """phi(phi^-1(u)) = u for strong and weak nonlinearity; A -> inf is the identity."""
    u = np.linspace(0, 1, 101)
    for a in (0.3, 1.0, 5.0):
        np.testing.assert_allclose(curve(inverse_curve(u, a), a), u, atol=1e-12)
    np.testing.assert_allclose(curve(u, 1e12), u, atol=1e-9)


def test_ideal_device_takes_exactly_the_requested_increment() -> None:
    """The limit case: many levels, linear, no noise, no spread or faults: pulses move g by dg within w/levels."""
    levels = 1 << 20
    devices, rng = array(g_min=0.0, g_max=1.0, levels=levels)
    start = np.random.default_rng(5).uniform(0.2, 0.8, SHAPE)
    devices.initialise(start)
    np.testing.assert_allclose(devices.g, start, atol=1 / levels)
    dg = np.random.default_rng(6).uniform(-0.1, 0.1, SHAPE)
    before = devices.g.copy()
    devices.apply_pulses(np.rint(dg * levels).astype(np.int64), rng)
    np.testing.assert_allclose(devices.g - before, dg, atol=1 / levels)
    np.testing.assert_array_equal(devices.read(rng), devices.g)


@pytest.mark.parametrize("a", [1.0, 3.0])
def test_nonlinear_steps_shrink_along_each_direction_and_levels_span_the_window(a: float) -> None:
    """SET steps shrink from g_min by e^(1/A) across the window, RESET steps likewise from g_max;
    `levels` pulses cross it."""
    devices, rng = array(g_min=0.1, g_max=1.1, levels=32, a_pot=a, a_dep=a)
    devices.initialise(np.full(SHAPE, 0.1))
    trace = [devices.g[0, 0]]
    for _ in range(32):
        devices.apply_pulses(np.ones(SHAPE, dtype=np.int64), rng)
        trace.append(devices.g[0, 0])
    steps = np.diff(trace)
    assert np.all(steps > 0) and steps[0] / steps[-1] == pytest.approx(math.exp(31 / 32 / a), rel=0.05)
    assert trace[-1] == pytest.approx(1.1, abs=1e-12)
    down = [devices.g[0, 0]]
    for _ in range(32):
        devices.apply_pulses(-np.ones(SHAPE, dtype=np.int64), rng)
        down.append(devices.g[0, 0])
    dsteps = -np.diff(down)
    assert np.all(dsteps > 0) and dsteps[0] / dsteps[-1] == pytest.approx(math.exp(31 / 32 / a), rel=0.05)
    assert down[-1] == pytest.approx(0.1, abs=1e-12)


def test_potentiation_and_depression_differ_when_nonlinearities_differ() -> None:
    """One SET then one RESET does not return to the start when A_pot != A_dep (asymmetry)."""
    devices, rng = array(levels=16, a_pot=0.5, a_dep=4.0)
    devices.initialise(np.full(SHAPE, 0.5))
    start = devices.g.copy()
    devices.apply_pulses(np.ones(SHAPE, dtype=np.int64), rng)
    devices.apply_pulses(-np.ones(SHAPE, dtype=np.int64), rng)
    assert np.all(np.abs(devices.g - start) > 1e-3)


def test_cycle_to_cycle_noise_grows_like_sqrt_of_pulses() -> None:
    """Per-pulse noise of c2c*window: one pulse spreads by c2c*w, nine pulses by 3*c2c*w."""
    for n, expected in ((1, 0.01), (9, 0.03)):
        devices, rng = array(levels=1000, c2c=0.01)
        devices.initialise(np.full(SHAPE, 0.5))
        devices.apply_pulses(np.full(SHAPE, n, dtype=np.int64), rng)
        assert np.std(devices.g) == pytest.approx(expected, rel=0.05)
        assert np.mean(devices.g) == pytest.approx(0.5 + n / 1000, abs=1e-3)


def test_device_to_device_spread_of_window_and_nonlinearity() -> None:
    """Every parameter spreads log-normally with relative width d2d."""
    devices, _ = array(d2d=0.2, g_max=1.0, a_pot=2.0, a_dep=3.0, c2c=0.01)
    for values in (devices.g_max, devices.a_pot, devices.a_dep, devices.c2c):
        assert np.std(np.log(values)) == pytest.approx(0.2, rel=0.05)


def test_read_noise_is_relative_and_does_not_disturb_the_state() -> None:
    devices, rng = array(read_noise=0.02)
    devices.initialise(np.full(SHAPE, 0.5))
    before = devices.g.copy()
    reads = devices.read(rng)
    assert np.std(reads / before - 1) == pytest.approx(0.02, rel=0.05)
    np.testing.assert_array_equal(devices.g, before)


def test_stuck_devices_sit_at_their_bound_and_ignore_pulses() -> None:
    devices, rng = array(stuck_min=0.05, stuck_max=0.1, levels=8)
    low, high = devices.stuck < 0, devices.stuck > 0
    assert low.mean() == pytest.approx(0.05, abs=0.01) and high.mean() == pytest.approx(0.1, abs=0.01)
    devices.initialise(np.full(SHAPE, 0.5))
    devices.apply_pulses(np.full(SHAPE, 3, dtype=np.int64), rng)
    assert np.all(devices.g[low] == devices.g_min[low]) and np.all(devices.g[high] == devices.g_max[high])
    free = devices.stuck == 0
    assert np.all(devices.g[free] == pytest.approx(0.5 + 3 / 8))


def test_drift_relaxes_toward_g_min_at_each_programming_event() -> None:
    devices, rng = array(g_min=0.1, g_max=1.1, drift=0.01, levels=1000)
    devices.initialise(np.full(SHAPE, 0.6))
    devices.apply_pulses(np.zeros(SHAPE, dtype=np.int64), rng)
    np.testing.assert_allclose(devices.g, 0.1 + 0.5 * 0.99)


def test_same_seed_same_devices_and_pulse_noise() -> None:
    kw = dict(levels=32, a_pot=2.0, a_dep=3.0, c2c=0.02, d2d=0.1, stuck_min=0.01)
    results = []
    for _ in range(2):
        devices, rng = array(seed=11, **kw)
        devices.initialise(np.full(SHAPE, 0.3))
        devices.apply_pulses(np.full(SHAPE, -2, dtype=np.int64), rng)
        results.append(devices.state())
    for key in results[0]:
        np.testing.assert_array_equal(results[0][key], results[1][key])


def test_bad_counts_are_rejected() -> None:
    devices, rng = array()
    with pytest.raises(TypeError, match="integers"):
        devices.apply_pulses(np.zeros(SHAPE), rng)
    with pytest.raises(ValueError, match="shape"):
        devices.apply_pulses(np.zeros((2, 2), dtype=np.int64), rng)
    with pytest.raises(ValueError, match="window"):
        DeviceModel(g_min=1.0, g_max=0.5)
    assert math.isinf(DeviceModel().a_pot)
