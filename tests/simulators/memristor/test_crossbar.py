"""Crossbar system: ideal limit equals the resistive network, every read is noisy, pulses quantise, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.memristor import CrossbarConfig
from aeqprop.simulators.resistive import ResistiveConfig

from aeqprop.estimators import estimate_gradient
from aeqprop.system import PulsedSystem

NET = dict(inputs=5, hidden=[6], outputs=3, input_gain=2.0, bias_init=0.1)
IDEAL = dict(g_max=2.0, levels=1 << 22)


def crossbar(seed: int = 0, read_noise_v: float = 0.0, **device):
    cfg = CrossbarConfig(**NET, read_noise_v=read_noise_v, device={**IDEAL, **device})
    return cfg.build(np.random.default_rng(seed))


def batch(seed: int = 3, n: int = 8) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, 5)), rng.uniform(0, 1, (n, 3))


def test_ideal_crossbar_trains_exactly_like_the_resistive_network() -> None:
    """The ideal-device limit: same init, same EP steps, same parameters (to ~10 steps of the 2^-22 level grid)."""
    xb = CrossbarConfig(**NET, tol_v=1e-10, device=IDEAL).build(np.random.default_rng(0))
    rn = ResistiveConfig(**NET, tol_v=1e-10).build(np.random.default_rng(0))
    for step in range(4):
        x, y = batch(step)
        for system in (xb, rn):
            est = estimate_gradient(system, x, y, "centered", 0.05)
            system.program({k: -0.002 * v for k, v in est.gradient.items()})
    a, b = xb.read_params(), rn.read_params()
    for name in a:
        np.testing.assert_allclose(a[name], b[name], atol=1e-5)  # init and 4 roundings to the 2^-22 grid, compounded
    assert any(np.abs(a[n] - ResistiveConfig(**NET).build(np.random.default_rng(0)).read_params()[n]).max() > 1e-3
               for n in a)


def test_voltage_reads_carry_noise_that_averaging_divides_by_sqrt_n() -> None:
    """Outputs and local measurements are noisy (sigma per read); 16 reads give sigma/4; the state stays put."""
    xb = crossbar(read_noise_v=0.05)
    x, _ = batch(n=2000)
    xb.clamp(x)
    xb.nudge(0.0)
    xb.relax()
    clean = xb._layers[-1].copy()
    assert np.std(xb.read_outputs(1) - clean) == pytest.approx(0.05, rel=0.05)
    assert np.std(xb.read_outputs(16) - clean) == pytest.approx(0.05 / 4, rel=0.05)
    local = [xb.read_local(1)["b2"] for _ in range(2)]
    assert np.abs(local[0] - local[1]).max() > 0
    np.testing.assert_array_equal(xb._layers[-1], clean)


def test_conductance_reads_are_noisy_and_program_moves_by_whole_pulses() -> None:
    """read_params has the devices' relative read noise; program() lands on the level grid (no c2c noise)."""
    xb = crossbar(levels=20, read_noise=0.05)
    true = xb.devices["g1"].g.copy()
    reads = xb.read_params()["g1"]
    assert np.all(reads[true > 0.1] != true[true > 0.1])
    xb.program({"g1": np.full(true.shape, 0.25)})
    moved = (xb.devices["g1"].g - true) / 0.1  # 0.1 S per pulse
    inside = (true > 0.2) & (true < 1.5)
    np.testing.assert_allclose(moved[inside], np.rint(moved[inside]), atol=1e-9)
    assert np.all(np.isin(np.rint(moved[inside]), [2, 3]))


def test_apply_pulses_contract_and_capabilities() -> None:
    xb = crossbar(levels=10)
    assert isinstance(xb, PulsedSystem)
    assert xb.spec.capabilities == {"local", "program", "pulse"}
    assert xb.spec.params["g1"].bounds == (0.0, 2.0)
    with pytest.raises(KeyError, match="not a device array"):
        xb.apply_pulses({"b1": np.zeros(6, dtype=np.int64)})
    before = xb.devices["g2"].g.copy()
    xb.apply_pulses({"g2": np.ones(before.shape, dtype=np.int64)})
    low = before < 1.5
    np.testing.assert_allclose(xb.devices["g2"].g[low] - before[low], 0.2)
    np.testing.assert_allclose(xb.read_params()["g2"], xb.devices["g2"].g)


def test_snapshot_restore_continues_bit_for_bit_including_the_noise_generator() -> None:
    """Restoring a snapshot (devices, state and generator) into a fresh system repeats the same noisy future."""
    kw = dict(read_noise_v=0.02, levels=32, a_pot=2.0, a_dep=3.0, c2c=0.01, d2d=0.1, read_noise=0.01,
              stuck_min=0.05, drift=0.001)
    xb = crossbar(seed=4, **kw)
    x, y = batch()

    def steps(system) -> np.ndarray:
        for _ in range(3):
            est = estimate_gradient(system, x, y, "one-sided", 0.2)
            system.program({k: -0.02 * v for k, v in est.gradient.items()})
        return np.concatenate([system.read_outputs(1).ravel(), system.read_params()["g1"].ravel()])

    steps(xb)
    snap = xb.snapshot()
    first = steps(xb)
    other = crossbar(seed=99, **kw)
    other.restore(snap)
    np.testing.assert_array_equal(steps(other), first)
