"""Agnostic equilibrium propagation (Aeqprop; Scellier, Mishra, Bengio, Ollivier 2022; docs/science.md §2).

The controller computes no gradient (at most it scales a measured drift). The parameters θ are physical degrees
of freedom that relax with the state, held by control knobs u. Per batch:

1. clamp x, nudge β₁, relax;
2. **homeostasis**: adjust u by feedback from the *measured* θ until θ is back at its set point;
3. freeze u, nudge β₂, relax: θ drifts by ≈ −ε·(β₂ − β₁)·(I + ε∇²F)⁻¹∇L, a gradient step performed by the
   system's own relaxation. The drifted θ becomes the next set point (with ``drift_gain`` G, the held θ plus G
   times the measured drift: a learning rate G·ε·Δβ with ε small enough to stay far inside the bound below).

Variants (β₁, β₂): optimistic (0, β), pessimistic (−β, 0), centered (−β/2, +β/2). The rule needs only the
capability ``homeostatic`` (clamp, nudge, relax, read_outputs, read_params, set_controls): it never sees an
energy, a gradient, a Jacobian or a device equation. ε is the learning rate; when the protocol sets it, the rule
hands it to the system with ``set_coupling`` and decays it per epoch.

The held point is stable only while ε·λ_max(−∇²F) < 1 in every group. The rule never computes λ: the homeostat
*measures* the response r of θ to u, which is (I + ε∇²F)⁻¹, so ε·λ = 1 − 1/r; the :class:`StabilityGuard` keeps
it below ``margin`` per group from periodic probes of each group's largest response; a hold that fails is
retried at half the failing groups' ε before the run stops.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Literal, cast

import numpy as np
from pydantic import Field, model_validator

from .homeostat import JOINT, HoldReport, Homeostat, NotHeld
from .optim import SGD, layer_rates
from .rules import LearningRule, StepReport
from .settings import ProtocolError, Rate, Reads, RuleSettings, Section
from .system import Arrays, CapabilityError, HomeostaticSystem, ParamSpec, PhysicalSystem

Variant = Literal["optimistic", "pessimistic", "centered"]
VARIANTS: tuple[str, ...] = ("optimistic", "pessimistic", "centered")


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


def _kappa(r: float) -> float:
    """ε·λ implied by a measured response r = 1/(1 − ελ); a non-positive or non-finite response means ≥ 1."""
    if not math.isfinite(r) or r <= 0:
        return 1.0
    return max(0.0, 1.0 - 1.0 / r)


@dataclass
class StabilityGuard:
    """Keeps each group's ε·λ below ``margin``, λ measured by the homeostat's probes; logs what it did per epoch.

    Every ``probe_every`` steps (and on the step after a hold measured ε·λ > ``alarm`` along its correction)
    the homeostat probes each group's largest response r to its own knobs, λ̂ = (1 − 1/r)/ε, and the whole
    held point's (all knobs at once), whose ε·λ scales with a common factor J on every group; the ε used is
    J·min(schedule, 0.8·margin/λ̂), so it also returns toward the schedule when λ falls. The holds' own
    along-correction responses are logged, and raise the alarm, but set nothing: they mix the groups' moves.
    """

    margin: float = 0.5
    probe_every: int = 100
    alarm: float = 0.95
    retries: int = 3
    lam: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    reductions: dict[str, int] = field(default_factory=dict)
    kappa_max: dict[str, float] = field(default_factory=dict)
    kappa_sum: dict[str, float] = field(default_factory=dict)
    kappa_n: dict[str, int] = field(default_factory=dict)
    probed_max: dict[str, float] = field(default_factory=dict)
    probes: int = 0
    joint: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.margin < 1:
            raise ValueError(f"stability margin must be in (0, 1), got {self.margin}")
        if self.probe_every < 1:
            raise ValueError(f"probe_every must be >= 1, got {self.probe_every}")

    def observe(self, response: Mapping[str, float]) -> bool:
        """Log one hold's along-correction responses; return whether they call for a probe (alarm)."""
        alarm = False
        for name, r in response.items():
            kappa = _kappa(r)
            self.kappa_max[name] = max(self.kappa_max.get(name, 0.0), kappa)
            self.kappa_sum[name] = self.kappa_sum.get(name, 0.0) + kappa
            self.kappa_n[name] = self.kappa_n.get(name, 0) + 1
            alarm |= kappa > self.alarm
        return alarm

    def observe_probe(self, response: Mapping[str, float], eps: Mapping[str, float],
                      schedule: Mapping[str, float]) -> bool:
        """Set λ̂ from a probe's responses; return whether any group's ε must change."""
        self.probes += 1
        changed = False
        before = dict(self.scale)
        for name, r in response.items():
            kappa = _kappa(r)
            self.probed_max[name] = max(self.probed_max.get(name, 0.0), kappa)
            if name != JOINT:
                self.lam[name] = kappa / eps[name]
        if JOINT in response:  # ε·λ of the whole held point scales with a common factor on every group's ε
            target = min(1.0, self.joint * 0.8 * self.margin / max(_kappa(response[JOINT]), 1e-12))
            # Down at once, up a quarter of the way: a probe that converged less far reads lower.
            self.joint = target if target < self.joint else self.joint + 0.25 * (target - self.joint)
        for name in schedule:
            self._rescale(name, schedule[name])
            changed |= abs(self.scale[name] - before.get(name, 1.0)) > 0.01 * before.get(name, 1.0)
        return changed

    def reduce(self, factors: Mapping[str, float], eps: Mapping[str, float], schedule: Mapping[str, float]) -> None:
        """A hold failed: treat the named groups as if ε·λ had reached 1/factor times its present value."""
        for name, f in factors.items():
            self.lam[name] = max(self.lam.get(name, 0.0), 0.8 * self.margin / (f * eps[name]))
            self._rescale(name, schedule[name])

    def _rescale(self, name: str, scheduled: float) -> bool:
        lam = self.lam.get(name, 0.0)
        new = self.joint * (1.0 if lam <= 0 else min(1.0, 0.8 * self.margin / (scheduled * lam)))
        old = self.scale.get(name, 1.0)
        self.scale[name] = new
        if new < 0.99 * old:
            self.reductions[name] = self.reductions.get(name, 0) + 1
        return abs(new - old) > 0.01 * old

    def epoch_log(self) -> dict:
        """Per group: ε·λ measured by probes (max) and along holds' corrections (mean, max), λ̂, reductions."""
        log = {
            "eps_lambda_probed_max": dict(self.probed_max),
            "eps_lambda_hold_mean": {k: self.kappa_sum[k] / self.kappa_n[k] for k in self.kappa_n},
            "eps_lambda_hold_max": dict(self.kappa_max),
            "lambda_estimate": dict(self.lam),
            "joint_factor": self.joint,
            "eps_reductions": dict(self.reductions),
            "probes": self.probes,
        }
        self.kappa_max, self.kappa_sum, self.kappa_n, self.reductions, self.probed_max = {}, {}, {}, {}, {}
        self.probes = 0
        return log


class AgnosticEP:
    """Aeqprop as a :class:`~aeqprop.rules.LearningRule`: no optimizer, ε is the learning rate.

    ``eps`` (one value per parameter group) is handed to the system with ``set_coupling`` when given, and
    multiplied by ``decay`` after each epoch; ``None`` leaves the system's own coupling alone (then decay is not
    possible and must be 1, and the guard can only report). The set point, the knobs, the homeostat's gains and
    the guard's ε scales are the rule's state.
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
        guard: StabilityGuard | None = None,
        drift_gain: float = 1.0,
    ) -> None:
        if not (math.isfinite(drift_gain) and drift_gain > 0):
            raise ValueError(f"drift_gain must be a positive number, got {drift_gain}")
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
        self.guard = guard
        self.drift_gain = drift_gain
        self.epoch = 0
        self.set_point: Arrays | None = None
        self.controls: Arrays | None = None
        self.last_hold: HoldReport | None = None
        self._theta_held: Arrays | None = None  # θ as measured at the end of the last hold
        self._coupling_eps: dict[str, float] | None = None
        self._steps = 0
        self._alarm = False
        self._stopped: dict[str, int] = {}
        self._stopped_max: dict[str, int] = {}
        self._holds = 0

    # --- the three phases ---------------------------------------------------------------------------------
    def train_step(self, physical: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> StepReport:
        """Clamp, hold θ at its set point under β₁, release under β₂: the drift is the step."""
        system = self._attach(physical)
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
        hold = self._hold(system)
        relaxations += 2 + hold.iterations
        sweeps += hold.sweeps
        iterations = hold.iterations
        if self.guard is not None and (self._steps % self.guard.probe_every == 0 or self._alarm):
            probe_relaxations, probe_sweeps = self._probe(system)
            relaxations += probe_relaxations
            sweeps += probe_sweeps
            hold = self._hold(system)  # the probe (and a new ε) moved θ: hold it again
            relaxations += hold.iterations
            sweeps += hold.sweeps
            iterations += hold.iterations
        if outputs is None:
            outputs = system.read_outputs(self.reads)
        system.nudge(self.beta2, target)
        sweeps += system.relax().sweeps
        self.set_point = self._next_set_point(system, self.homeostat.read(system))
        self._steps += 1
        self._after_hold(system, hold)
        return StepReport(outputs=outputs, relaxations=relaxations, sweeps=sweeps, homeostasis_iterations=iterations)

    def step(self, system: PhysicalSystem, x: np.ndarray, target: np.ndarray) -> Arrays:
        """One training step; returns the measured drift θ₂ − θ₁ per group (benchmarks and tests)."""
        self._attach(system)
        before = {k: v.copy() for k, v in self._held().items()}
        self.train_step(system, x, target)
        after = self._held()
        return {k: after[k] - before[k] for k in before}

    def predict(self, physical: PhysicalSystem, x: np.ndarray) -> np.ndarray:
        """Free phase with θ held at its set point (the parameters would otherwise drift with the input)."""
        system = self._attach(physical)
        system.clamp(x)
        system.nudge(0.0)
        system.relax()
        self.last_hold = self._hold(system)
        return system.read_outputs(self.reads)

    # --- holding inside the stability region ----------------------------------------------------------------
    def _held(self) -> Arrays:
        """The set point (known once the rule has met its system)."""
        if self.set_point is None:
            raise RuntimeError("aeqprop: no set point before the first step")
        return self.set_point

    def _knobs(self) -> Arrays:
        if self.controls is None:
            raise RuntimeError("aeqprop: no knobs before the first step")
        return self.controls

    def _hold(self, system: HomeostaticSystem) -> HoldReport:
        """Hold θ; on failure lower the failing groups' ε (when the guard may) and try again."""
        retries = 0
        while True:
            try:
                self._theta_held, hold = self.homeostat.hold(
                    system, self._knobs(), self._held(), self.homeostat.read(system))
                return hold
            except NotHeld as exc:
                if self.guard is None or self.base_eps is None or retries >= self.guard.retries or not exc.groups:
                    raise
                retries += 1
                self.guard.reduce({name: 0.5 for name in exc.groups}, self._eps(), self.scheduled_eps())
                self._apply_coupling(system)
                system.relax()

    def _next_set_point(self, system: HomeostaticSystem, drifted: Arrays) -> Arrays:
        """θ₁ + G·(θ₂ − θ₁): the measured drift under frozen knobs, times the drift gain G (G = 1: θ₂ itself).

        Both θ₁ (end of the hold) and θ₂ are measured at the same knobs, so the hold's residual error cancels
        and only the physics' own step is amplified. A set point past a declared bound is put on the bound (a
        projected step): the knob could never hold it there.
        """
        if self.drift_gain == 1.0 or self._theta_held is None:
            return drifted
        gain, held, specs = self.drift_gain, self._theta_held, system.spec.params
        out = {}
        for name, value in drifted.items():
            point = held[name] + gain * (value - held[name])
            lo, hi = specs[name].bounds if name in specs else (None, None)
            if lo is not None or hi is not None:
                np.clip(point, lo, hi, out=point)
            out[name] = point
        return out

    def _after_hold(self, system: HomeostaticSystem, hold: HoldReport) -> None:
        self.last_hold = hold
        self._holds += 1
        for name, count in hold.stopped.items():
            self._stopped[name] = self._stopped.get(name, 0) + count
            self._stopped_max[name] = max(self._stopped_max.get(name, 0), count)
        if self.guard is None:
            return
        self._alarm = self.guard.observe(hold.response)

    def _probe(self, system: HomeostaticSystem) -> tuple[int, int]:
        """Probe every group's response to its own knobs; set ε from it (when the coupling is settable)."""
        assert self.guard is not None
        responses, relaxations, sweeps = self.homeostat.probe(system, self._knobs(), seed=self._steps)
        self._alarm = False
        if self.base_eps is not None:
            if self.guard.observe_probe(responses, self._eps(), self.scheduled_eps()):
                self._apply_coupling(system)
                sweeps += system.relax().sweeps
                relaxations += 1
        else:  # a fixed coupling: the guard can only measure and report
            self.guard.observe_probe(responses, {k: 1.0 for k in responses}, {k: 1.0 for k in responses})
        return relaxations, sweeps

    # --- epochs and checkpoints -----------------------------------------------------------------------------
    def eps(self) -> dict[str, float] | None:
        """ε per group for the present epoch (``None`` when the system's own coupling is used)."""
        if self.base_eps is None:
            return None
        scale = {} if self.guard is None else self.guard.scale
        return {k: v * scale.get(k, 1.0) for k, v in self.scheduled_eps().items()}

    def _eps(self) -> dict[str, float]:
        """ε per group when the rule sets the coupling (``base_eps`` given)."""
        eps = self.eps()
        if eps is None:
            raise RuntimeError("aeqprop: the system's own coupling is in use; there is no eps to change")
        return eps

    def scheduled_eps(self) -> dict[str, float]:
        """The protocol's ε for this epoch (base × decay^epoch), before the stability guard."""
        return {k: v * self.decay**self.epoch for k, v in (self.base_eps or {}).items()}

    def epoch_metrics(self) -> dict:
        """What the homeostat measured this epoch: ε used, measured ε·λ, reductions, knobs resting on stops."""
        metrics: dict = {"eps": self.eps()}
        if self.guard is not None:
            metrics.update(self.guard.epoch_log())
        if self.homeostat.noise is not None:
            metrics["read_noise"] = dict(self.homeostat.noise)
            metrics["hold_tolerance"] = self.homeostat.tolerances()
        if self._stopped:
            metrics["knobs_on_stops_per_hold"] = {k: v / max(1, self._holds) for k, v in self._stopped.items()}
            metrics["knobs_on_stops_max"] = dict(self._stopped_max)
        self._stopped, self._stopped_max, self._holds = {}, {}, 0
        return metrics

    def end_epoch(self) -> None:
        self.epoch += 1
        self.homeostat.noise = None  # re-measured at the next hold: the floor may change with the parameters

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "set_point": None if self.set_point is None else {k: v.copy() for k, v in self.set_point.items()},
            "controls": None if self.controls is None else {k: v.copy() for k, v in self.controls.items()},
            "homeostat": self.homeostat.state_dict(),
            "guard": None if self.guard is None else {"scale": dict(self.guard.scale), "lam": dict(self.guard.lam),
                                                      "joint": self.guard.joint},
            "steps": self._steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        saved, knobs = state.get("set_point"), state.get("controls")
        self.set_point = None if saved is None else {k: np.array(v) for k, v in saved.items()}
        self.controls = None if knobs is None else {k: np.array(v) for k, v in knobs.items()}
        self.homeostat.load_state_dict(state.get("homeostat", {}))
        self._steps = int(state.get("steps", 0))
        if self.guard is not None and state.get("guard") is not None:
            self.guard.scale = {k: float(v) for k, v in state["guard"]["scale"].items()}
            self.guard.lam = {k: float(v) for k, v in state["guard"]["lam"].items()}
            self.guard.joint = float(state["guard"].get("joint", 1.0))
        self._coupling_eps = None

    # --- helpers ------------------------------------------------------------------------------------------
    def _attach(self, physical: PhysicalSystem) -> HomeostaticSystem:
        """First contact: the set point is θ as measured, the knobs start there; apply this epoch's ε."""
        physical.spec.require(self.requires, "algorithm 'aeqprop'")
        system = cast(HomeostaticSystem, physical)  # it offers 'homeostatic': it has set_controls
        if self.set_point is None:
            self.set_point = self.homeostat.read(system)
        if self.controls is None:
            self.controls = {k: v.copy() for k, v in self.set_point.items()}
            system.set_controls(self.controls)
        if self.base_eps is not None and self._coupling_eps != self.eps():
            self._apply_coupling(system)
        return system

    def _apply_coupling(self, system: HomeostaticSystem) -> None:
        set_coupling = getattr(system, "set_coupling", None)
        if set_coupling is None:
            raise CapabilityError(
                "algorithm.eps needs a system whose coupling can be set (set_coupling); this one has a fixed "
                "coupling: leave eps unset to use it"
            )
        self._coupling_eps = self.eps()
        set_coupling(self._coupling_eps)


class HomeostasisConfig(Section):
    """The feedback loop that holds floating parameters at their set points (Aeqprop phase 2)."""

    tolerance: float = Field(default=1e-6, gt=0, description="Held when every parameter is this close to its set "
                             "point (parameter units).")
    max_iterations: int = Field(default=50, ge=1, description="Knob adjustments per hold before the run stops with "
                                "an error.")
    adaptive: bool = Field(default=True, description="Estimate each knob's gain from its measured response (else "
                           "unit gain).")
    max_gain: float = Field(default=1024.0, ge=1, le=1e6, description="Largest knob multiplier the adaptive loop "
                            "may use (weakly responding knobs).")
    reads: Reads = Field(default=1, description="Parameter read-backs averaged per measurement; the tolerance "
                         "rises to the measured noise floor.")
    stop_after: int = Field(default=3, ge=1, le=10**6, description="Iterations without response after which a knob "
                            "rests on a stop: reported, no longer pushed.")
    margin: float | None = Field(default=0.5, gt=0, lt=1, description="Largest measured eps*lambda per group "
                                 "(1 - 1/response); eps is lowered past it. None: never lower eps.")
    probe_every: int = Field(default=100, ge=1, le=10**9, description="Batches between probes of each group's "
                             "largest response to its own knobs (sets eps under margin).")


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
    drift_gain: float = Field(default=1.0, gt=0, description="The next set point is the held theta plus this "
                              "multiple of the measured drift: the step is drift_gain*eps*(beta2-beta1)*gradient, "
                              "a learning rate beyond what eps alone can hold (eps*lambda < 1).")
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
        homeostat = Homeostat(h.tolerance, h.max_iterations, h.adaptive, h.max_gain, h.reads, h.stop_after)
        eps = group_eps(system.spec.params, self.eps, self.eps_bias)
        guard = None if h.margin is None else StabilityGuard(h.margin, h.probe_every)
        return AgnosticEP(self.variant, self.beta, homeostat, eps, self.decay, self.reads, guard, self.drift_gain)


__all__ = [
    "VARIANTS", "AeqpropConfig", "AgnosticEP", "HoldReport", "HomeostasisConfig", "Homeostat", "NotHeld",
    "StabilityGuard", "Variant", "group_eps", "nudges",
]
