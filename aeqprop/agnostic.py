"""Agnostic equilibrium propagation (Aeqprop; Scellier, Mishra, Bengio, Ollivier 2022; SCIENCE.md §2).

The controller computes no update at all. The parameters θ are physical degrees of freedom that relax with the
state, held by control knobs u. Per batch:

1. clamp x, nudge β₁, relax;
2. **homeostasis**: adjust u by feedback from the *measured* θ until θ is back at its set point;
3. freeze u, nudge β₂, relax: θ drifts by ≈ −ε·(β₂ − β₁)·(I + ε∇²F)⁻¹∇L, a gradient step performed by the
   system's own relaxation. The drifted θ becomes the next set point.

Variants (β₁, β₂): optimistic (0, β), pessimistic (−β, 0), centered (−β/2, +β/2). The rule needs only the
capability ``homeostatic`` (clamp, nudge, relax, read_outputs, read_params, set_controls): it never sees an
energy, a gradient, a Jacobian or a device equation. ε is the learning rate; when the protocol sets it, the rule
hands it to the system with ``set_coupling`` and decays it per epoch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field, model_validator

from .optim import SGD, layer_rates
from .rules import LearningRule, StepReport
from .settings import ProtocolError, Rate, Reads, RuleSettings, Section
from .system import Arrays, CapabilityError, NotSettled, ParamSpec, PhysicalSystem

Variant = Literal["optimistic", "pessimistic", "centered"]
VARIANTS: tuple[str, ...] = ("optimistic", "pessimistic", "centered")


class NotHeld(NotSettled):
    """Homeostasis could not bring every parameter back within tolerance of its set point."""


def nudges(variant: Variant, beta: float) -> tuple[float, float]:
    """(β₁, β₂) of a variant: the nudge held during homeostasis and the one that produces the step."""
    if beta <= 0:
        raise ValueError(f"aeqprop needs beta > 0 (the variant sets the signs), got {beta}")
    if variant == "optimistic":
        return 0.0, beta
    if variant == "pessimistic":
        return -beta, 0.0
    if variant == "centered":
        return -beta / 2, beta / 2
    raise ValueError(f"unknown aeqprop variant {variant!r}; allowed: {', '.join(VARIANTS)}")


def group_eps(
    params: Mapping[str, ParamSpec], eps: float | list[float], eps_bias: float | list[float] | None = None
) -> dict[str, float]:
    """ε per parameter group from one value or one per layer, with biases optionally on their own rates."""
    depth = max(p.layer for p in params.values())
    weights = layer_rates(eps, depth, "algorithm.eps")
    biases = layer_rates(eps if eps_bias is None else eps_bias, depth, "algorithm.eps_bias")
    return {name: (biases if spec.role == "bias" else weights)[spec.layer - 1] for name, spec in params.items()}


@dataclass(frozen=True)
class HoldReport:
    """One homeostasis episode: knob adjustments (each followed by a relaxation), sweeps, final worst error."""

    iterations: int
    sweeps: int
    max_error: float


class Homeostat:
    """Holds floating parameters at their set points by feedback on the measured θ, knob by knob.

    Each iteration moves every knob by ``gain · (θ_set − θ)``, relaxes and reads θ again. A fixed unit gain
    fails in two ways (SCIENCE.md §2): where ε times the coupling of θ to the state is large, θ responds to u by
    more than 1 (the response is (I + ε∇²F)⁻¹ and ∇²F ≤ 0 for energies linear in θ) and a unit gain overshoots
    or diverges; where θ sits at a physical bound it does not respond at all and the loop stalls. With
    ``adaptive`` the gain of each knob is the product of

    - a group gain: the inverse of the response measured along the correction just made
      (⟨Δθ, Δu⟩ / ⟨Δu, Δu⟩ over the group's responsive knobs). Knobs are coupled through the shared state, so
      the response that matters is the collective one; a per-knob secant Δθᵢ/Δuᵢ is dominated by the other
      knobs' moves and was measured to need twice the iterations;
    - a knob multiplier: doubled (up to ``max_gain``) each time that knob's parameter did not respond to its own
      correction (a bound, a stuck device), reset to 1 once it responds again.

    Gains persist between batches: they are the controller's model of the plant, learned online from
    measurements only.
    """

    def __init__(
        self, tolerance: float = 1e-6, max_iterations: int = 50, adaptive: bool = True, max_gain: float = 16.0
    ) -> None:
        if tolerance <= 0 or max_iterations < 0 or max_gain < 1:
            raise ValueError("homeostasis needs tolerance > 0, max_iterations >= 0 and max_gain >= 1")
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.adaptive = adaptive
        self.max_gain = max_gain
        self.group_gains: dict[str, float] = {}
        self.knob_gains: Arrays = {}

    def gain(self, name: str) -> np.ndarray:
        """Present gain of every knob of group ``name``."""
        return self.group_gains[name] * self.knob_gains[name]

    def hold(self, system: PhysicalSystem, u: Arrays, set_point: Arrays, theta: Arrays) -> tuple[Arrays, HoldReport]:
        """Adjust ``u`` (in place) until ``theta`` is within tolerance of ``set_point``; return the held θ.

        Raises :class:`NotHeld` naming how many knobs are still out of tolerance after ``max_iterations``.
        """
        for name, value in u.items():
            if name not in self.knob_gains or self.knob_gains[name].shape != value.shape:
                self.knob_gains[name] = np.ones_like(value)
                self.group_gains[name] = 1.0
        error = {name: set_point[name] - theta[name] for name in set_point}
        sweeps = 0
        for iteration in range(self.max_iterations + 1):
            worst = max((float(np.max(np.abs(e))) for e in error.values() if e.size), default=0.0)
            if worst <= self.tolerance:
                return theta, HoldReport(iteration, sweeps, worst)
            if iteration == self.max_iterations:
                break
            step = {}
            for name, e in error.items():
                step[name] = self.gain(name) * e
                u[name] += step[name]
            system.set_controls(u)
            sweeps += system.relax().sweeps
            new = system.read_params()
            for name, e in error.items():
                if self.adaptive:
                    self._update_gains(name, step[name], new[name] - theta[name], e)
                error[name] = set_point[name] - new[name]
            theta = new
        out = {name: int(np.count_nonzero(np.abs(e) > self.tolerance)) for name, e in error.items()}
        total = sum(v.size for v in error.values())
        worst_name = max(error, key=lambda n: float(np.max(np.abs(error[n]))) if error[n].size else 0.0)
        raise NotHeld(
            f"homeostasis: {sum(out.values())} of {total} knobs could not hold their parameter within "
            f"{self.tolerance:.3g} of its set point after {self.max_iterations} iterations (largest error "
            f"{float(np.max(np.abs(error[worst_name]))):.3g} in {worst_name}; per group: "
            + ", ".join(f"{n}={c}" for n, c in out.items() if c) + ")"
        )

    def _update_gains(self, name: str, du: np.ndarray, dtheta: np.ndarray, error: np.ndarray) -> None:
        """Group gain from the collective response; knob multipliers from each knob's own (non-)response."""
        active = np.abs(error) > self.tolerance
        if not np.any(active):
            return
        floor = 1.0 / self.max_gain
        # Dead: the parameter did not move (a bound, a stuck device). Moving against the knob is the other
        # knobs' doing (coupling through the state), not a reason to push harder.
        dead = active & (np.abs(dtheta) < floor * np.abs(du))
        responsive = active & (dtheta * du > floor * du * du)
        knobs = self.knob_gains[name]
        np.copyto(knobs, np.minimum(2.0 * knobs, self.max_gain), where=dead)
        np.copyto(knobs, 1.0, where=responsive)
        if np.any(responsive):
            d_u, d_theta = du[responsive], dtheta[responsive]
            response = float(np.dot(d_theta, d_u) / np.dot(d_u, d_u))
            if response > floor:
                self.group_gains[name] = float(np.clip(1.0 / response, floor, self.max_gain))

    def state_dict(self) -> dict:
        return {"group_gains": dict(self.group_gains), "knob_gains": {k: v.copy() for k, v in self.knob_gains.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.group_gains = {k: float(v) for k, v in state.get("group_gains", {}).items()}
        self.knob_gains = {k: np.array(v, dtype=np.float64) for k, v in state.get("knob_gains", {}).items()}


class AgnosticEP:
    """Aeqprop as a :class:`~aeqprop.rules.LearningRule`: no optimizer, ε is the learning rate.

    ``eps`` (one value per parameter group) is handed to the system with ``set_coupling`` when given, and
    multiplied by ``decay`` after each epoch; ``None`` leaves the system's own coupling alone (then decay is not
    possible and must be 1). The set point, the knobs and the homeostat's gains are the rule's state.
    """

    requires = frozenset({"homeostatic"})

    def __init__(
        self,
        variant: Variant,
        beta: float,
        homeostat: Homeostat,
        eps: Mapping[str, float] | None = None,
        decay: float = 1.0,
        reads: int = 1,
    ) -> None:
        self.variant = variant
        self.beta = beta
        self.beta1, self.beta2 = nudges(variant, beta)
        if eps is None and decay != 1.0:
            raise ValueError("eps decay needs eps: without it the rule cannot change the system's coupling")
        if not 0 < decay <= 1:
            raise ValueError(f"decay must be in (0, 1], got {decay}")
        self.homeostat = homeostat
        self.base_eps = None if eps is None else dict(eps)
        self.decay = decay
        self.reads = reads
        self.epoch = 0
        self.set_point: Arrays | None = None
        self.controls: Arrays | None = None
        self.last_hold: HoldReport | None = None
        self._coupling_epoch: int | None = None

    # --- the three phases ---------------------------------------------------------------------------------
    def train_step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> StepReport:
        """Clamp, hold θ at its set point under β₁, release under β₂: the drift is the step."""
        self._attach(system)
        system.clamp(x)
        relaxations, sweeps = 0, 0
        outputs = None
        if self.beta1 != 0.0:  # a free phase, only to read the prediction the trainer scores
            system.nudge(0.0)
            sweeps += system.relax().sweeps
            relaxations += 1
            outputs = system.read_outputs(self.reads)
        system.nudge(self.beta1, target)
        sweeps += system.relax().sweeps
        theta, hold = self.homeostat.hold(system, self.controls, self.set_point, system.read_params())
        if outputs is None:
            outputs = system.read_outputs(self.reads)
        system.nudge(self.beta2, target)
        sweeps += system.relax().sweeps + hold.sweeps
        self.set_point = system.read_params()
        self.last_hold = hold
        relaxations += 2 + hold.iterations
        return StepReport(outputs=outputs, relaxations=relaxations, sweeps=sweeps, homeostasis_iterations=hold.iterations)

    def step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> Arrays:
        """One training step; returns the measured drift θ₂ − θ₁ per group (benchmarks and tests)."""
        self._attach(system)
        before = {k: v.copy() for k, v in self.set_point.items()}
        self.train_step(system, x, target)
        return {k: self.set_point[k] - before[k] for k in before}

    def predict(self, system: PhysicalSystem, x: np.ndarray) -> np.ndarray:
        """Free phase with θ held at its set point (the parameters would otherwise drift with the input)."""
        self._attach(system)
        system.clamp(x)
        system.nudge(0.0)
        system.relax()
        self.last_hold = self.homeostat.hold(system, self.controls, self.set_point, system.read_params())[1]
        return system.read_outputs(self.reads)

    # --- epochs and checkpoints -----------------------------------------------------------------------------
    def eps(self) -> dict[str, float] | None:
        """ε per group for the present epoch (``None`` when the system's own coupling is used)."""
        if self.base_eps is None:
            return None
        return {k: v * self.decay**self.epoch for k, v in self.base_eps.items()}

    def end_epoch(self) -> None:
        self.epoch += 1

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "set_point": None if self.set_point is None else {k: v.copy() for k, v in self.set_point.items()},
            "controls": None if self.controls is None else {k: v.copy() for k, v in self.controls.items()},
            "homeostat": self.homeostat.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self.set_point = None if state.get("set_point") is None else {k: np.array(v) for k, v in state["set_point"].items()}
        self.controls = None if state.get("controls") is None else {k: np.array(v) for k, v in state["controls"].items()}
        self.homeostat.load_state_dict(state.get("homeostat", {}))
        self._coupling_epoch = None

    # --- helpers ------------------------------------------------------------------------------------------
    def _attach(self, system: PhysicalSystem) -> None:
        """First contact: the set point is θ as measured, the knobs start there; apply this epoch's ε."""
        if self.set_point is None:
            self.set_point = system.read_params()
        if self.controls is None:
            self.controls = {k: v.copy() for k, v in self.set_point.items()}
            system.set_controls(self.controls)
        if self.base_eps is not None and self._coupling_epoch != self.epoch:
            set_coupling = getattr(system, "set_coupling", None)
            if set_coupling is None:
                raise CapabilityError(
                    "algorithm.eps needs a system whose coupling can be set (set_coupling); this one has a fixed "
                    "coupling: leave eps unset to use it"
                )
            set_coupling(self.eps())
            self._coupling_epoch = self.epoch


class HomeostasisConfig(Section):
    """The feedback loop that holds floating parameters at their set points (Aeqprop phase 2)."""

    tolerance: float = Field(default=1e-6, gt=0, description="Held when every parameter is this close to its set "
                             "point (parameter units).")
    max_iterations: int = Field(default=50, ge=1, description="Knob adjustments per hold before the run stops with "
                                "an error.")
    adaptive: bool = Field(default=True, description="Estimate each knob's gain from its measured response (else "
                           "unit gain).")
    max_gain: float = Field(default=16.0, ge=1, le=1e6, description="Largest knob gain the adaptive loop may use.")


class AeqpropConfig(RuleSettings):
    """Agnostic EP: parameters float with the state; the controller holds them and lets them drift."""

    description: ClassVar[str] = "agnostic EP: parameters float with the state, held by homeostasis, eps is the rate"

    kind: Literal["aeqprop"] = "aeqprop"
    variant: Variant = Field(default="centered", description=f"One of {', '.join(VARIANTS)}.")
    beta: float = Field(default=0.5, gt=0, description="Nudge strength; the variant sets the two nudges' signs.")
    eps: Rate | list[Rate] = Field(description="Coupling eps of the weights (the learning rate): one value or "
                                     "one per layer.")
    eps_bias: Rate | list[Rate] | None = Field(default=None, description="eps of the biases (default: eps).")
    decay: float = Field(default=1.0, gt=0, le=1, description="Multiply every eps by this after each epoch.")
    reads: Reads = Field(default=1, description="Repeated reads averaged per output measurement.")
    homeostasis: HomeostasisConfig = Field(default_factory=HomeostasisConfig)

    @model_validator(mode="after")
    def _positive(self) -> AeqpropConfig:
        for what, value in (("eps", self.eps), ("eps_bias", self.eps_bias)):
            values = value if isinstance(value, list) else [value]
            if any(v is not None and v <= 0 for v in values):
                raise ValueError(f"{what} must be positive, got {value}")
        return self

    def requires(self) -> frozenset[str]:
        return AgnosticEP.requires

    def needs_optimizer(self) -> bool:
        return False

    def needs_coupling(self) -> bool:
        return True  # eps is always given: the rule sets it with set_coupling

    def check_layers(self, layers: int) -> None:
        layer_rates(self.eps, layers, "algorithm.eps")
        if self.eps_bias is not None:
            layer_rates(self.eps_bias, layers, "algorithm.eps_bias")

    def summary(self) -> str:
        return f"aeqprop [{self.variant}]"

    def build(self, system: PhysicalSystem, optimizer: SGD | None, rng: np.random.Generator) -> LearningRule:
        if optimizer is not None:
            raise ProtocolError("algorithm 'aeqprop' has no optimizer (eps is its learning rate)")
        h = self.homeostasis
        homeostat = Homeostat(h.tolerance, h.max_iterations, h.adaptive, h.max_gain)
        eps = group_eps(system.spec.params, self.eps, self.eps_bias)
        return AgnosticEP(self.variant, self.beta, homeostat, eps, self.decay, self.reads)


__all__ = [
    "VARIANTS", "AeqpropConfig", "AgnosticEP", "HoldReport", "HomeostasisConfig", "Homeostat", "NotHeld", "Variant",
    "group_eps", "nudges",
]
