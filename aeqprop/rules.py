"""Learning rules: what the trainer calls once per batch. Each declares the capabilities it needs.

A rule owns its optimizer and random generator, so that a checkpoint of the rule plus a snapshot of the
system is everything needed to continue a run exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .estimators import EstimatorName, estimate_gradient, free_outputs
from .optim import SGD
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
    """The trainer's view of a learning rule."""

    requires: frozenset[str]

    def train_step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> StepReport: ...

    def predict(self, system: PhysicalSystem, x: np.ndarray) -> np.ndarray: ...

    def end_epoch(self) -> None: ...

    def state_dict(self) -> dict: ...

    def load_state_dict(self, state: dict) -> None: ...


class EquilibriumPropagation:
    """Classic EP: measure local gradients at two or three equilibria, then program SGD increments."""

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
    ) -> None:
        if beta == 0:
            raise ValueError("EP needs a nonzero nudge beta")
        self.estimator = estimator
        self.beta = beta
        self.reads = reads
        self.points = points
        self.optimizer = optimizer
        self.homeostasis = homeostasis
        self._rng = rng
        if homeostasis is not None:
            self.requires = self.requires | homeostasis.requires

    def train_step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> StepReport:
        est = estimate_gradient(system, x, target, self.estimator, self.beta, self.reads, self._rng, self.points)
        gradient = est.gradient
        if self.homeostasis is not None:
            for name, value in self.homeostasis.gradient(system, x, self._rng).items():
                gradient[name] = gradient[name] + value
        system.program(self.optimizer.step(gradient))
        return StepReport(outputs=est.outputs, relaxations=est.relaxations, sweeps=est.sweeps)

    def predict(self, system: PhysicalSystem, x: np.ndarray) -> np.ndarray:
        return free_outputs(system, x, self.reads)[0]

    def end_epoch(self) -> None:
        self.optimizer.end_epoch()

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict(), "rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self._rng.bit_generator.state = state["rng"]
