"""Noise-aware EP: estimate the signal-to-noise ratio of each gradient estimate and adapt the read count.

With ``reads = N`` the local measurements at each nudged equilibrium are taken as two halves of N/2 reads.
The two half-estimates a and b share the signal and carry independent noise, so for ĝ = (a + b)/2

    noise energy  E||ĝ - g||² ≈ ||a - b||² / 4,     SNR = sqrt(max(||ĝ||² - noise, 0) / noise)

at no extra cost in reads (Peters & Talatchian 2025: averaging N reads divides the noise by √N). The policy
keeps an exponential average of the SNR and doubles N when it falls below ``min_snr``, halving it again when it
exceeds ``2 * min_snr`` (the gap exceeds the √2 a doubling buys, so N does not oscillate).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .estimators import ESTIMATORS, Estimate, EstimatorName, free_outputs, settle
from .system import PhysicalSystem


def split_estimate(
    system: PhysicalSystem,
    x: np.ndarray,
    target: np.ndarray,
    estimator: EstimatorName,
    beta: float,
    reads: int,
    rng: np.random.Generator | None = None,
) -> tuple[Estimate, float]:
    """The EP estimate of :func:`~aeqprop.estimators.estimate_gradient` plus its estimated SNR (inf if noiseless)."""
    half = max(1, reads // 2)
    outputs, free = free_outputs(system, x, reads)
    sweeps = free.sweeps

    def two() -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        return system.read_local(half), system.read_local(half)

    if estimator == "centered":
        sweeps += settle(system, beta, target).sweeps
        plus = two()
        sweeps += settle(system, -beta, target).sweeps
        minus = two()
        scale, relaxations = 1.0 / (2.0 * beta), 3
    else:
        if estimator == "random-sign":
            if rng is None:
                raise ValueError("random-sign EP needs a random generator")
            beta = beta if rng.random() < 0.5 else -beta
        elif estimator != "one-sided":
            raise ValueError(f"unknown estimator {estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        minus = two()
        sweeps += settle(system, beta, target).sweeps
        plus = two()
        scale, relaxations = 1.0 / beta, 2
    gradient: dict[str, np.ndarray] = {}
    signal = noise = 0.0
    for name in plus[0]:
        a = (plus[0][name] - minus[0][name]) * scale
        b = (plus[1][name] - minus[1][name]) * scale
        g = 0.5 * (a + b)
        noise += 0.25 * float(np.sum((a - b) ** 2))
        signal += float(np.sum(g**2))
        gradient[name] = g
    snr = math.inf if noise == 0 else math.sqrt(max(signal - noise, 0.0) / noise)
    return Estimate(gradient=gradient, outputs=outputs, relaxations=relaxations, sweeps=sweeps), snr


@dataclass
class AdaptiveReads:
    """The read-count policy and its state (saved with the rule so that resume is exact)."""

    reads: int
    min_snr: float = 2.0
    min_reads: int = 2
    max_reads: int = 64
    smoothing: float = 0.1
    snr_average: float | None = None

    def __post_init__(self) -> None:
        if not 2 <= self.min_reads <= self.max_reads:
            raise ValueError(f"adaptive reads need 2 <= min_reads <= max_reads, got {self.min_reads}, {self.max_reads}")
        self.reads = min(max(self.reads, self.min_reads), self.max_reads)

    def update(self, snr: float) -> None:
        """Fold in one estimate's SNR and move N by a factor of 2 when the average leaves [min, 2 min]."""
        value = min(snr, 1e6)
        avg = value if self.snr_average is None else (1 - self.smoothing) * self.snr_average + self.smoothing * value
        if avg < self.min_snr and self.reads < self.max_reads:
            self.reads = min(2 * self.reads, self.max_reads)
            avg *= math.sqrt(2)
        elif avg > 2 * self.min_snr and self.reads > self.min_reads:
            self.reads = max(self.reads // 2, self.min_reads)
            avg /= math.sqrt(2)
        self.snr_average = avg

    def state_dict(self) -> dict:
        return {"reads": self.reads, "snr_average": self.snr_average}

    def load_state_dict(self, state: dict) -> None:
        self.reads = int(state["reads"])
        self.snr_average = state["snr_average"]


__all__ = ["AdaptiveReads", "split_estimate"]
