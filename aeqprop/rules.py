"""Learning rules: what the trainer calls once per batch. Each declares the capabilities it needs.

A rule owns its optimizer and random generator, so that a checkpoint of the rule plus a snapshot of the
system is everything needed to continue a run exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import numpy as np
from pydantic import Field, model_validator

from .adaptive import AdaptiveReads, split_estimate
from .estimators import NEEDS, EstimatorName, estimate_and_program, estimate_gradient, free_outputs
from .homeostasis import JacobianHomeostasis
from .optim import SGD
from .programming import PulseProgrammer, PulseProgrammingConfig
from .settings import ProtocolError, Reads, RuleSettings
from .system import PhysicalSystem


@dataclass(frozen=True)
class StepReport:
    """What one training step measured: free-phase outputs (for loss and accuracy) and its cost.

    ``homeostasis_iterations`` counts knob adjustments of rules that hold parameters by feedback (Aeqprop).
    """

    outputs: np.ndarray
    relaxations: int
    sweeps: int
    homeostasis_iterations: int = 0


class Regularizer(Protocol):
    """An extra term added to a rule's gradient estimate, measured on the system (e.g. Jacobian homeostasis)."""

    requires: frozenset[str]

    def gradient(self, system: PhysicalSystem, x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]: ...


class LearningRule(Protocol):
    """The trainer's view of a learning rule.

    A rule may also offer ``epoch_metrics() -> dict``: figures of the epoch just trained (e.g. reads per
    measurement, pulses fired), merged into the epoch's metrics by the trainer, counters reset by the call.
    """

    requires: frozenset[str]

    def train_step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> StepReport: ...

    def predict(self, system: PhysicalSystem, x: np.ndarray) -> np.ndarray: ...

    def end_epoch(self) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class EquilibriumPropagation:
    """Classic EP: measure local gradients at two or three equilibria, then program SGD increments.

    Optional parts: ``programmer`` (pulse programming from a nominal device model, capability ``pulse``) and
    ``adaptive`` (the read count follows the estimated SNR of the gradient estimate).

    When the system offers ``contrast`` and nothing needs the gradient array itself (plain SGD without
    momentum, a real stencil, no homeostasis, pulse programming or adaptive reads), each step is the fused one
    (:func:`~aeqprop.estimators.estimate_and_program`): the same update, formed where it is measured.
    """

    requires = frozenset({"local", "program"})

    def __init__(
        self,
        estimator: EstimatorName,
        beta: float,
        optimizer: SGD,
        rng: np.random.Generator,
        reads: int = 1,
        points: int = 4,
        homeostasis: Regularizer | None = None,
        programmer: PulseProgrammer | None = None,
        adaptive: AdaptiveReads | None = None,
    ) -> None:
        if beta == 0:
            raise ValueError("EP needs a nonzero nudge beta")
        self.estimator = estimator
        self.beta = beta
        self.reads = reads
        self.points = points
        self.optimizer = optimizer
        self.homeostasis = homeostasis
        self.programmer = programmer
        self.adaptive = adaptive
        if homeostasis is not None:
            self.requires = self.requires | homeostasis.requires
        if programmer is not None:
            self.requires = self.requires | {"pulse"}
        self._rng = rng
        # Parts that need the gradient estimate as arrays rule out the fused step (capability "contrast").
        self._fusable = estimator != "cauchy" and homeostasis is None and programmer is None and adaptive is None
        self._stats = {"steps": 0, "reads": 0, "snr_log": 0.0, "snr_n": 0, "pulses": 0, "verify_rounds": 0}

    @property
    def current_reads(self) -> int:
        """Reads per measurement used now (adaptive mode changes it)."""
        return self.adaptive.reads if self.adaptive is not None else self.reads

    def train_step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> StepReport:
        stats = self._stats
        stats["steps"] += 1
        stats["reads"] += self.current_reads
        if self.adaptive is not None:
            est, snr = split_estimate(system, x, target, self.estimator, self.beta, self.adaptive.reads, self._rng)
            self.adaptive.update(snr)
            if math.isfinite(snr) and snr > 0:
                stats["snr_log"] += math.log(snr)
                stats["snr_n"] += 1
        else:
            rates = self.optimizer.fused_rates() if self._fusable else None
            if rates is not None and "contrast" in system.spec.capabilities:
                est = estimate_and_program(system, x, target, self.estimator, self.beta,  # type: ignore[arg-type]
                                           rates, self.reads, self._rng)
                return StepReport(outputs=est.outputs, relaxations=est.relaxations, sweeps=est.sweeps)
            est = estimate_gradient(system, x, target, self.estimator, self.beta, self.reads, self._rng, self.points)
        gradient = est.gradient
        if self.homeostasis is not None:
            for name, value in self.homeostasis.gradient(system, x, self._rng).items():
                gradient[name] = gradient[name] + value
        delta = self.optimizer.step(gradient)
        if self.programmer is None:
            system.program(delta)
        else:
            report = self.programmer.program(system, delta, self.current_reads)  # type: ignore[arg-type]
            stats["pulses"] += report.pulses
            stats["verify_rounds"] += report.verify_rounds
        return StepReport(outputs=est.outputs, relaxations=est.relaxations, sweeps=est.sweeps)

    def predict(self, system: PhysicalSystem, x: np.ndarray) -> np.ndarray:
        return free_outputs(system, x, self.current_reads)[0]

    def epoch_metrics(self) -> dict:
        """Mean reads per measurement, and (when used) SNR geometric mean, pulses and verify rounds per step."""
        s = self._stats
        steps = max(1, s["steps"])
        out: dict = {"reads": s["reads"] / steps}
        if self.adaptive is not None:
            out["reads_final"] = self.adaptive.reads
            out["snr"] = math.exp(s["snr_log"] / s["snr_n"]) if s["snr_n"] else None
        if self.programmer is not None:
            out["pulses_per_step"] = s["pulses"] / steps
            out["verify_rounds_per_step"] = s["verify_rounds"] / steps
        self._stats = dict.fromkeys(s, 0)
        self._stats["snr_log"] = 0.0
        return out

    def end_epoch(self) -> None:
        self.optimizer.end_epoch()

    def state_dict(self) -> dict:
        state = {"optimizer": self.optimizer.state_dict(), "rng": self._rng.bit_generator.state}
        if self.adaptive is not None:
            state["adaptive"] = self.adaptive.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._rng.bit_generator.state = state["rng"]
        if self.adaptive is not None:
            self.adaptive.load_state_dict(state["adaptive"])


class EPConfig(RuleSettings):
    """Equilibrium propagation with measured local gradients and programmed SGD updates."""

    description: ClassVar[str] = "equilibrium propagation: measured local gradients, programmed SGD updates"

    kind: Literal["ep"] = "ep"
    estimator: EstimatorName = Field(
        default="centered", description="one-sided, random-sign, centered, stencil (O(β⁴)) or cauchy (complex)."
    )
    beta: float = Field(default=1.0, description="Nudge strength (nonzero; its sign matters for one-sided).")
    reads: Reads = Field(default=1, description="Repeated reads averaged per measurement (start value if "
                       "adaptive).")
    adaptive_reads: bool = Field(default=False, description="Double/halve reads to keep the estimate's SNR >= min_snr.")
    min_snr: float = Field(default=2.0, gt=0, description="Adaptive reads: SNR below which reads double.")
    max_reads: Reads = Field(default=64, ge=2, description="Adaptive reads: upper bound on reads.")
    programming: PulseProgrammingConfig | None = Field(
        default=None, description="Program conductances by counted pulses (needs capability 'pulse')."
    )
    points: int = Field(default=4, ge=2, le=1024, description="cauchy only: complex nudges on the circle |β|.")
    homeostasis: float = Field(
        default=0.0, ge=0,
        description="Weight λ of Jacobian homeostasis (λ/2 ‖J − Jᵀ‖², measured by state kicks; needs 'perturb').",
    )
    homeostasis_params: list[str] | None = Field(
        default=None, description="Parameter groups the homeostasis term trims (default: every weight group).",
    )
    homeostasis_probes: int = Field(default=2, ge=1, le=2**16, description="Parameter directions probed per step.")
    homeostasis_step: float = Field(default=1e-3, gt=0, description="Size of the parameter probe.")
    homeostasis_kick: float = Field(default=1e-4, gt=0, description="Size of the state kicks.")
    homeostasis_kicks: int = Field(default=32, ge=1, le=2**16, description="Kick pairs per penalty measurement.")

    @model_validator(mode="after")
    def _nonzero(self) -> EPConfig:
        if self.beta == 0:
            raise ValueError("beta must be nonzero")
        return self

    def requires(self) -> frozenset[str]:
        needs = EquilibriumPropagation.requires | NEEDS.get(self.estimator, frozenset())
        if self.programming is not None:
            needs = needs | {"pulse"}
        return needs | JacobianHomeostasis.requires if self.homeostasis > 0 else needs

    def summary(self) -> str:
        return f"ep [{self.estimator}]"

    def build(self, system: PhysicalSystem, optimizer: SGD | None, rng: np.random.Generator) -> LearningRule:
        if optimizer is None:
            raise ProtocolError("algorithm 'ep' needs an [optimizer] section")
        homeostasis = None
        if self.homeostasis > 0:
            homeostasis = JacobianHomeostasis(
                system.spec, self.homeostasis, self.homeostasis_params, self.homeostasis_probes,
                self.homeostasis_step, self.homeostasis_kick, self.homeostasis_kicks,
            )
        programmer = None if self.programming is None else self.programming.build(system, rng)
        adaptive = AdaptiveReads(self.reads, self.min_snr, max_reads=self.max_reads) if self.adaptive_reads else None
        return EquilibriumPropagation(self.estimator, self.beta, optimizer, rng, self.reads, self.points,
                                      homeostasis, programmer, adaptive)
