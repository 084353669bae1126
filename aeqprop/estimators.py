"""Equilibrium-propagation gradient estimators, written against the contract only.

Notation of SCIENCE.md: g(β) = ∂E/∂θ measured at the equilibrium under nudge β; the true gradient is g'(0).

=============  ==========================================  ======================  ========
estimator      estimate of dL/dθ                           nudges (after free)     bias
=============  ==========================================  ======================  ========
one-sided      (g(β) − g(0)) / β                           +β                      O(β)
random-sign    one-sided with sign(β) drawn per batch       ±β                      O(β), 0 on average
centered       (g(β) − g(−β)) / (2β)                        +β, −β                  O(β²)
=============  ==========================================  ======================  ========
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from .system import PhysicalSystem, RelaxReport

EstimatorName = Literal["one-sided", "random-sign", "centered"]
ESTIMATORS: tuple[str, ...] = ("one-sided", "random-sign", "centered")


@dataclass(frozen=True)
class Estimate:
    """One batch's gradient estimate and what it cost to measure."""

    gradient: dict[str, np.ndarray]
    outputs: np.ndarray  # free-phase outputs, (batch, n_outputs)
    relaxations: int
    sweeps: int  # total sweeps (simulators) or settle reads (hardware) over all relaxations


def settle(system: PhysicalSystem, beta: float, target: np.ndarray | None) -> RelaxReport:
    """Set the nudge and relax: one arrow pair of the DESIGN flow."""
    system.nudge(beta, target)
    return system.relax()


def free_outputs(system: PhysicalSystem, x: np.ndarray, reads: int = 1) -> tuple[np.ndarray, RelaxReport]:
    """Clamp ``x``, relax with no nudge and read the outputs: inference."""
    system.clamp(x)
    report = settle(system, 0.0, None)
    return system.read_outputs(reads), report


def estimate_gradient(
    system: PhysicalSystem,
    x: np.ndarray,
    target: np.ndarray,
    estimator: EstimatorName,
    beta: float,
    reads: int = 1,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """Run the free and nudged phases of ``estimator`` on ``system`` and return the EP estimate.

    ``beta`` is the nudge strength (its sign is used by one-sided; random-sign draws the sign from ``rng``).
    Needs capability ``local``.
    """
    outputs, free = free_outputs(system, x, reads)
    sweeps = free.sweeps
    if estimator == "centered":
        sweeps += settle(system, beta, target).sweeps
        grad = system.read_local(reads)
        sweeps += settle(system, -beta, target).sweeps
        minus = system.read_local(reads)
        scale = 1.0 / (2.0 * beta)
        relaxations = 3
    else:
        if estimator == "random-sign":
            if rng is None:
                raise ValueError("random-sign EP needs a random generator")
            beta = beta if rng.random() < 0.5 else -beta
        elif estimator != "one-sided":
            raise ValueError(f"unknown estimator {estimator!r}; allowed: {', '.join(ESTIMATORS)}")
        minus = system.read_local(reads)
        sweeps += settle(system, beta, target).sweeps
        grad = system.read_local(reads)
        scale = 1.0 / beta
        relaxations = 2
    for name, value in grad.items():
        value -= minus[name]
        value *= scale
    return Estimate(gradient=grad, outputs=outputs, relaxations=relaxations, sweeps=sweeps)
