"""Noisy parameter read-back: averaged reads, a tolerance from the measured noise floor, an unbiased step."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.hopfield import FloatingHopfieldConfig

from aeqprop.agnostic import AgnosticEP, Homeostat, NotHeld


def net(noise: float, seed: int = 0):
    cfg = FloatingHopfieldConfig(inputs=5, hidden=[6], outputs=3, bias_init=0.2, init_gain=2.0, tol=1e-12,
                                 tol_param=1e-12, read_noise=noise, noise_seed=seed)
    return cfg.build(np.random.default_rng(4))


def batch(seed: int = 2):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (8, 5)), np.eye(3)[rng.integers(0, 3, 8)]


def test_averaged_reads_divide_the_noise_by_sqrt_n() -> None:
    """read_params(reads=N) is the mean of N reads: its σ, measured by the homeostat, falls as 1/√N."""
    system = net(1e-3)
    x, _ = batch()
    system.clamp(x)
    system.relax()
    for reads in (1, 16):
        sigma = Homeostat(reads=reads).measure_noise(system)
        for name, value in sigma.items():
            assert value == pytest.approx(1e-3 / np.sqrt(reads), rel=0.25), (name, reads)


def test_tolerance_follows_the_noise_floor() -> None:
    """With noise 1e-4 an absolute tolerance of 1e-6 cannot be met (NotHeld); by default the homeostat raises
    it to the measured floor and holds, and the exact system keeps the absolute tolerance."""
    x, y = batch()
    rule = AgnosticEP("centered", 0.1, Homeostat(tolerance=1e-6, max_iterations=30),
                      eps={n: 0.01 for n in ("w1", "w2", "b1", "b2")})
    rule.step(net(1e-4), x, y)
    tol = rule.homeostat.tolerances()
    assert all(1e-4 * 2 < t < 1e-4 * 8 for t in tol.values())
    exact = AgnosticEP("centered", 0.1, Homeostat(tolerance=1e-6, max_iterations=30), eps={n: 0.01 for n in tol})
    exact.step(net(0.0), x, y)
    assert exact.homeostat.tolerances() == {n: 1e-6 for n in tol}
    blind = Homeostat(tolerance=1e-6, max_iterations=30)
    blind.noise = {n: 0.0 for n in tol}  # pretend the reads were exact: the loop chases the noise
    with pytest.raises(NotHeld):
        AgnosticEP("centered", 0.1, blind, eps={n: 0.01 for n in tol}).step(net(1e-4), x, y)


def test_drift_stays_unbiased_under_read_noise() -> None:
    """σ equal to the per-parameter drift: single steps scatter (cos ≈ 0.6) but their mean over 40 noise draws
    points along the noiseless drift (cos ≥ 0.97; measured 0.98) with its length (within 10 %)."""
    x, y = batch()

    def drift(noise: float, seed: int) -> np.ndarray:
        system = net(noise, seed)
        rule = AgnosticEP("centered", 1e-2, Homeostat(tolerance=1e-13, max_iterations=300),
                          eps={n: 1e-2 for n in ("w1", "w2", "b1", "b2")})
        rule.predict(system, x)
        return np.concatenate([v.ravel() for v in rule.step(system, x, y).values()])

    clean = drift(0.0, 0)
    sigma = float(np.sqrt(np.mean(clean**2)))
    mean = np.mean([drift(sigma, s) for s in range(40)], axis=0)
    cos = float(mean @ clean / (np.linalg.norm(mean) * np.linalg.norm(clean)))
    assert cos >= 0.97
    assert np.linalg.norm(mean) / np.linalg.norm(clean) == pytest.approx(1.0, abs=0.1)
