"""Equilibrium-propagation gradient estimators, written against the contract only.

Notation of docs/science.md §1: g(β) = ∂E/∂θ measured at the equilibrium under nudge β; the true gradient is g'(0).

=============  ==========================================  ======================  ========
estimator      estimate of dL/dθ                           nudges (after free)     bias
=============  ==========================================  ======================  ========
one-sided      (g(β) − g(0)) / β                           +β                      O(β)
random-sign    one-sided with sign(β) drawn per batch       ±β                      O(β), 0 on average
centered       (g(β) − g(−β)) / (2β)                        +β, −β                  O(β²)
stencil        (−g(2β) + 8g(β) − 8g(−β) + g(−2β)) / (12β)  ±β, ±2β                 O(β⁴)
cauchy         Re (1/N) Σ_k g(β_k)/β_k,  β_k = |β|e^{2πik/N}  N complex nudges        O(|β|^N)
=============  ==========================================  ======================  ========

The stencil is the five-point central difference (its g(0) weight is zero). The Cauchy estimator is the
trapezoidal rule on Cauchy's integral g'(0) = (1/2πi)∮ g(z)/z² dz over the circle |z| = |β|; it needs a
system with capability ``complex`` (smooth dynamics) and is exact up to the Nth Taylor term of g.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, cast

import numpy as np

from .system import ContrastSystem, PhasesSystem, PhysicalSystem, RelaxReport

EstimatorName = Literal["one-sided", "random-sign", "centered", "stencil", "cauchy"]
ESTIMATORS: tuple[str, ...] = ("one-sided", "random-sign", "centered", "stencil", "cauchy")

#: Extra capabilities an estimator needs beyond ``local``.
NEEDS: dict[str, frozenset[str]] = {"cauchy": frozenset({"complex"})}

#: Real stencils: (nudge multiples of β, weights); the estimate is Σ w·g(mβ) / β.
STENCILS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "one-sided": ((0.0, 1.0), (-1.0, 1.0)),
    "centered": ((1.0, -1.0), (0.5, -0.5)),
    "stencil": ((2.0, 1.0, -1.0, -2.0), (-1 / 12, 8 / 12, -8 / 12, 1 / 12)),
}


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
    points: int = 4,
) -> Estimate:
    """Run the free and nudged phases of ``estimator`` on ``system`` and return the EP estimate.

    ``beta`` is the nudge strength (its sign is used by one-sided; random-sign draws the sign from ``rng``;
    cauchy uses ``|beta|`` and ``points`` nudges on a circle). Needs capability ``local`` (and ``complex``
    for cauchy). Every nudged phase warm-starts from the previous equilibrium.
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"unknown estimator {estimator!r}; allowed: {', '.join(ESTIMATORS)}")
    needs = NEEDS.get(estimator)
    if needs:
        system.spec.require(needs, f"the {estimator} estimator")
    outputs, free = free_outputs(system, x, reads)
    sweeps = free.sweeps
    if estimator == "cauchy":
        return _cauchy(system, target, abs(beta), points, reads, outputs, sweeps)
    beta, (multiples, weights) = _stencil(estimator, beta, rng)
    total: dict[str, np.ndarray] | None = None
    relaxations = 1
    for m, w in zip(multiples, weights):
        if m != 0.0:  # m == 0: the free equilibrium is still in place
            sweeps += settle(system, m * beta, target).sweeps
            relaxations += 1
        local = system.read_local(reads)
        scale = w / beta
        if total is None:
            total = {name: value * scale for name, value in local.items()}
        else:
            for name, value in local.items():
                total[name] += value * scale
    return Estimate(gradient=total or {}, outputs=outputs, relaxations=relaxations, sweeps=sweeps)


def estimate_and_program(
    system: ContrastSystem,
    x: np.ndarray,
    target: np.ndarray,
    estimator: EstimatorName,
    beta: float,
    rates: Mapping[str, float],
    reads: int = 1,
    rng: np.random.Generator | None = None,
) -> Estimate:
    """The fused step: the phases of ``estimator`` as :func:`estimate_gradient` runs them, but the system
    accumulates w/β · its local terms at each phase and then adds ``rates[name]`` × that sum to each parameter
    (capability ``contrast``). Same update as ``program({n: rates[n] * estimate[n]})``; the returned
    ``Estimate`` has an empty ``gradient`` (no gradient array ever leaves the system). Real stencils only.
    A system that also offers ``phases`` settles all phases, the free one last, in one ``accumulate_phases``
    call.
    """
    if estimator not in STENCILS and estimator != "random-sign":
        raise ValueError(f"the fused step takes a real stencil; {estimator!r} is not one")
    beta, (multiples, weights) = _stencil(estimator, beta, rng)
    if "phases" in system.spec.capabilities:
        nudges, held = _phases_free_last(multiples, weights)
        system.clamp(x)
        reports = cast(PhasesSystem, system).accumulate_phases(
            [m * beta for m in nudges], [w / beta for w in held], target, reads)
        outputs = system.read_outputs(reads)
        sweeps, relaxations = sum(report.sweeps for report in reports), len(reports)
    else:
        outputs, free = free_outputs(system, x, reads)
        sweeps, relaxations = free.sweeps, 1
        for m, w in zip(multiples, weights):
            if m != 0.0:
                sweeps += settle(system, m * beta, target).sweeps
                relaxations += 1
            system.accumulate_local(w / beta, reads)
    system.program_accumulated(rates)
    return Estimate(gradient={}, outputs=outputs, relaxations=relaxations, sweeps=sweeps)


@functools.cache
def _phases_free_last(
    multiples: tuple[float, ...], weights: tuple[float, ...]
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """A stencil's phases for one ``accumulate_phases`` call: the nudged ones, then the free one (its weight, 0
    when the stencil has none) last, so that the system is left at the free equilibrium whose outputs the step
    reports."""
    nudged = [(m, w) for m, w in zip(multiples, weights) if m != 0.0]
    free = sum(w for m, w in zip(multiples, weights) if m == 0.0)
    return (*(m for m, _ in nudged), 0.0), (*(w for _, w in nudged), free)


def _stencil(
    estimator: str, beta: float, rng: np.random.Generator | None
) -> tuple[float, tuple[tuple[float, ...], tuple[float, ...]]]:
    """The nudge and the (multiples, weights) of a real stencil; random-sign draws its sign from ``rng`` here."""
    if estimator == "random-sign":
        if rng is None:
            raise ValueError("random-sign EP needs a random generator")
        beta = beta if rng.random() < 0.5 else -beta
        estimator = "one-sided"
    return beta, STENCILS[estimator]


def _cauchy(
    system: PhysicalSystem, target: np.ndarray, radius: float, points: int, reads: int,
    outputs: np.ndarray, sweeps: int,
) -> Estimate:
    """(1/N) Σ_k g(β_k)/β_k on β_k = r·e^{2πik/N}, walked around the circle from the free equilibrium."""
    if points < 2:
        raise ValueError(f"the Cauchy estimator needs at least 2 points, got {points}")
    total: dict[str, np.ndarray] | None = None
    for k in range(points):
        beta_k = radius * np.exp(2j * np.pi * k / points)
        sweeps += settle(system, beta_k, target).sweeps
        local = system.read_local(reads)
        scale = 1.0 / (points * beta_k)
        if total is None:
            total = {name: value * scale for name, value in local.items()}
        else:
            for name, value in local.items():
                total[name] += value * scale
    gradient = {name: np.ascontiguousarray(value.real) for name, value in (total or {}).items()}
    return Estimate(gradient=gradient, outputs=outputs, relaxations=points + 1, sweeps=sweeps)
