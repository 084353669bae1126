"""Continual equilibrium propagation (C-EP, Ernoult et al. 2020): learning during the nudged phase.

Instead of one update after the nudged phase, the parameters move after every relaxation step of it:

    θ_{t+1} = θ_t − η · [∂E/∂θ(s_{t+1}) − ∂E/∂θ(s_t)] / β

The increments telescope: with a small rate η the sum over K steps is the one-sided EP update with the same
rate η, −η(g(s_K) − g(s_0))/β, without the controller holding the free-phase measurement for long (the rule
is local in time). With this normalisation the rate is the EP rate itself (papers that average the
increments over K steps quote η_EP / K). Needs capability ``stepwise``.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from .estimators import free_outputs
from .optim import SGD
from .rules import LearningRule, StepReport
from .settings import ProtocolError, Reads, RuleSettings
from .system import PhysicalSystem, RelaxReport


class ContinualEP:
    """C-EP: ``steps`` nudged relaxation steps of ``sweeps_per_step`` sweeps each, an update after each."""

    requires = frozenset({"local", "program", "stepwise"})

    def __init__(
        self,
        beta: float,
        steps: int,
        optimizer: SGD,
        rng: np.random.Generator,
        reads: int = 1,
        sweeps_per_step: int = 1,
        random_sign: bool = False,
    ) -> None:
        if beta == 0:
            raise ValueError("C-EP needs a nonzero nudge beta")
        if steps < 1 or sweeps_per_step < 1:
            raise ValueError(f"C-EP needs steps >= 1 and sweeps_per_step >= 1, got {steps}, {sweeps_per_step}")
        self.beta = beta
        self.steps = steps
        self.sweeps_per_step = sweeps_per_step
        self.reads = reads
        self.random_sign = random_sign
        self.optimizer = optimizer
        self._rng = rng

    def train_step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> StepReport:
        outputs, free = free_outputs(system, x, self.reads)
        beta = self.beta
        if self.random_sign and self._rng.random() < 0.5:
            beta = -beta
        previous = system.read_local(self.reads)
        system.nudge(beta, target)
        sweeps = free.sweeps
        for _ in range(self.steps):
            report = system.step(self.sweeps_per_step)  # type: ignore[attr-defined]
            sweeps += report.sweeps if isinstance(report, RelaxReport) else self.sweeps_per_step
            now = system.read_local(self.reads)
            increment = {name: (value - previous[name]) / beta for name, value in now.items()}
            system.program(self.optimizer.step(increment))
            previous = now
        return StepReport(outputs=outputs, relaxations=2, sweeps=sweeps)

    def predict(self, system: PhysicalSystem, x: np.ndarray) -> np.ndarray:
        return free_outputs(system, x, self.reads)[0]

    def end_epoch(self) -> None:
        self.optimizer.end_epoch()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._rng.bit_generator.state = state["rng"]


__all__ = ["ContinualEP"]


class CEPConfig(RuleSettings):
    """Continual EP: parameters updated after every relaxation step of the nudged phase (``stepwise``)."""

    description: ClassVar[str] = "continual EP: an update after every step of the nudged relaxation"

    kind: Literal["cep"] = "cep"
    beta: float = Field(default=1.0, description="Nudge strength (nonzero).")
    steps: int = Field(default=10, ge=1, description="Nudged relaxation steps per batch, one update after each.")
    sweeps_per_step: int = Field(default=1, ge=1, description="Solver sweeps (settle reads) per step.")
    random_sign: bool = Field(default=False, description="Draw the sign of beta per batch.")
    reads: Reads = Field(default=1, description="Repeated reads averaged per measurement.")

    @model_validator(mode="after")
    def _nonzero(self) -> CEPConfig:
        if self.beta == 0:
            raise ValueError("beta must be nonzero")
        return self

    def requires(self) -> frozenset[str]:
        return ContinualEP.requires

    def build(self, system: PhysicalSystem, optimizer: SGD | None, rng: np.random.Generator) -> LearningRule:
        if optimizer is None:
            raise ProtocolError("algorithm 'cep' needs an [optimizer] section")
        return ContinualEP(self.beta, self.steps, optimizer, rng, self.reads, self.sweeps_per_step,
                           self.random_sign)
