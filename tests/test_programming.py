"""Controller-side pulse programming: nominal model round trips, unbiased rounding, write-verify corrects misses."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.memristor import CrossbarConfig

from aeqprop.programming import NominalDevice, PulseProgrammer

NET = dict(inputs=16, hidden=[32], outputs=8, input_gain=2.0, bias_init=0.1)


@pytest.mark.parametrize("a", [1.0, 3.0, float("inf")])
def test_nominal_counts_reach_the_target_on_the_nominal_device(a: float) -> None:
    """after(g, fractional_counts(g, t)) = t in both directions, for nonlinear and linear models."""
    dev = NominalDevice(0.1, 1.1, 50, a, a)
    rng = np.random.default_rng(0)
    g, t = rng.uniform(0.1, 1.1, 500), rng.uniform(0.1, 1.1, 500)
    np.testing.assert_allclose(dev.after(g, dev.fractional_counts(g, t)), t, atol=1e-9)
    counts = dev.counts(g, t)
    assert counts.dtype == np.int64
    assert np.all(np.sign(counts[np.abs(t - g) > dev.step]) == np.sign((t - g)[np.abs(t - g) > dev.step]))


def test_stochastic_rounding_is_unbiased_for_sub_pulse_requests() -> None:
    """A request of 0.3 pulses fires one pulse 30 % of the time; nearest rounding never fires."""
    dev = NominalDevice(0.0, 1.0, 100)
    g = np.full(20000, 0.5)
    target = g + 0.3 * dev.step
    counts = dev.counts(g, target, np.random.default_rng(1))
    assert counts.mean() == pytest.approx(0.3, abs=0.01)
    assert set(np.unique(counts)) == {0, 1}
    assert not dev.counts(g, target).any()


def _program_error(write_verify: bool, seed: int = 0) -> tuple[np.ndarray, object]:
    """|true g - wanted g| per free device after programming a large random increment on a varied crossbar."""
    cfg = CrossbarConfig(**NET, device=dict(g_min=0.0, g_max=1.0, levels=32, a_pot=2.0, a_dep=3.0, c2c=0.01,
                                             d2d=0.2, read_noise=0.005))
    system = cfg.build(np.random.default_rng(seed))
    nominal = NominalDevice(0.0, 1.0, 32, 2.0, 3.0)
    programmer = PulseProgrammer(nominal, np.random.default_rng(1), "nearest", write_verify, max_iterations=4,
                                 tolerance=0.75)
    before = {k: v.g.copy() for k, v in system.devices.items()}
    delta = {k: np.random.default_rng(2).uniform(-0.2, 0.2, v.shape) for k, v in before.items()}
    report = programmer.program(system, delta)
    errors = []
    for name, g0 in before.items():
        wanted = np.clip(g0 + delta[name], 0.0, 1.0)
        free = system.devices[name].stuck == 0
        errors.append(np.abs(system.devices[name].g - wanted)[free])
    return np.concatenate(errors), report


def test_write_verify_lands_closer_to_the_target_than_open_loop() -> None:
    """Device spread makes open-loop pulses miss; reading back and correcting cuts the misses beyond a pulse."""
    open_error, open_report = _program_error(False)
    wv_error, wv_report = _program_error(True)
    step = 1 / 32
    assert wv_error.mean() < 0.7 * open_error.mean()
    assert np.mean(wv_error > step) < 0.3 * np.mean(open_error > step)
    assert open_report.reads == 1 and open_report.verify_rounds == 0
    assert 1 <= wv_report.verify_rounds <= 4 and wv_report.reads == 1 + wv_report.verify_rounds + (
        wv_report.verify_rounds < 4)
    assert wv_report.pulses > open_report.pulses


def test_biases_are_programmed_directly_and_weights_by_pulses() -> None:
    """Parameters with role 'bias' go through program(); only conductances receive pulses."""
    system = CrossbarConfig(**NET, device=dict(g_max=1.0, levels=1 << 20)).build(np.random.default_rng(3))
    programmer = PulseProgrammer(NominalDevice(0.0, 1.0, 1 << 20), np.random.default_rng(0))
    before = system.read_params()
    delta = {k: np.full(v.shape, 0.01) for k, v in before.items()}
    report = programmer.program(system, delta)
    after = system.read_params()
    np.testing.assert_allclose(after["b1"] - before["b1"], 0.01)
    inside = (before["g1"] > 0) & (before["g1"] < 0.9)
    np.testing.assert_allclose((after["g1"] - before["g1"])[inside], 0.01, atol=2e-6)
    assert report.pulses > 0
