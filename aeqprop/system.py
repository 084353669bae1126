"""The black-box contract between the controller and a physical learning machine.

Everything that learns (estimators, optimizers, the trainer) talks to a :class:`PhysicalSystem` and to
nothing else. Simulators (``aeqprop.simulators``) and instrument rigs (``aeqprop.drivers``) implement it;
the composition root (:mod:`aeqprop.protocol`) is the only controller module that names them.

Conventions: arrays are numpy, batch dimension first; a system with ``max_batch = 1`` (hardware) accepts
batches of one sample. ``read_local`` returns the *measured* dE/dθ, averaged over the batch, for every
parameter. The promises below are what :func:`aeqprop.testing.check_system` checks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import numpy as np

Capability = Literal[
    "local", "program", "homeostatic", "perturb", "stepwise", "complex", "pulse", "contrast", "phases"
]
CAPABILITIES: frozenset[str] = frozenset(
    {"local", "program", "homeostatic", "perturb", "stepwise", "complex", "pulse", "contrast", "phases"}
)

Arrays = dict[str, np.ndarray]


class AeqpropError(Exception):
    """Base class of every error the controller raises on purpose."""


class NotSettled(AeqpropError):
    """A relaxation did not reach equilibrium within its budget (sweeps, time or tolerance)."""

    exit_code = 1  # a fault of the system, not bad input


class CapabilityError(AeqpropError):
    """A learning rule asked for an operation the system does not offer."""


class LimitViolation(AeqpropError):
    """A command would exceed a configured safety limit; raised before anything is sent."""


class InstrumentFault(AeqpropError):
    """An instrument failed (timeout, garbled reply, error queue not empty): the run must stop."""

    exit_code = 1  # a fault, not bad input: even when it happens while a system is built or restored


@dataclass(frozen=True)
class ParamSpec:
    """One parameter group (e.g. the conductance matrix between two layers).

    ``bounds`` is the physical window (``None`` means unbounded on that side): what ``read_params`` returns and
    what ``program`` may reach stays inside it. ``layer`` groups parameters for per-layer learning rates: the
    1-based index of the layer whose units the parameter drives, counting the first layer after the inputs as 1.
    A weight between layers k-1 and k belongs to layer k; a backward weight from layer k to layer k-1 belongs to
    layer k-1 (it drives k-1); a bias of a unit in layer k belongs to layer k. ``role`` is ``"bias"`` for a
    parameter that acts on one unit alone (a bias current, a threshold, an offset) and ``"weight"`` for one that
    couples two units (a conductance, a synapse). A *force* is not a parameter: the output nudge is set by
    ``nudge``, and an input drive by ``clamp``; a learnable source that pushes a unit is a bias of that unit's layer.
    """

    shape: tuple[int, ...]
    bounds: tuple[float | None, float | None] = (None, None)
    unit: str = ""
    layer: int = 1
    role: Literal["weight", "bias"] = "weight"


@dataclass(frozen=True)
class SystemSpec:
    """What the controller may know about a system: sizes, parameters, capabilities, batch limit."""

    n_inputs: int
    n_outputs: int
    params: Mapping[str, ParamSpec]
    capabilities: frozenset[str]
    max_batch: int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        unknown = set(self.capabilities) - CAPABILITIES
        if unknown:
            raise ValueError(f"unknown capabilities {sorted(unknown)}; allowed: {sorted(CAPABILITIES)}")

    def require(self, needed: frozenset[str] | set[str], who: str) -> None:
        """Raise :class:`CapabilityError` naming what ``who`` needs and this system lacks."""
        missing = set(needed) - set(self.capabilities)
        if missing:
            raise CapabilityError(
                f"{who} needs capabilities {sorted(needed)} but the system offers "
                f"{sorted(self.capabilities)} (missing {sorted(missing)})"
            )


@dataclass(frozen=True)
class RelaxReport:
    """What one relaxation did, for logs, budgets and adaptive rules (never for the learning math itself).

    ``sweeps`` counts the units of work the relaxation spent in the system's own currency: full passes over
    every free unit for an iterative simulator (a joint state/parameter relaxation counts the state passes of
    every round), Newton iterations for a circuit simulator, settle-status reads (or board-reported steps) on
    hardware; a warm start that was already settled may report 0. It is comparable between relaxations of one
    system, not between systems. ``residual`` is the last change (or error) measured, in the state's units;
    ``settled`` is False only from ``step``, which may stop early: ``relax`` raises :class:`NotSettled` instead.
    """

    sweeps: int
    residual: float
    settled: bool = True
    message: str = ""


@runtime_checkable
class PhysicalSystem(Protocol):
    """A physical learning machine seen as a black box.

    Every system offers the first block; the others are gated by ``spec.capabilities``. A system that lacks a
    capability raises :class:`CapabilityError` from the corresponding method.
    """

    spec: SystemSpec

    # --- all systems -------------------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        """Set the input terminals to ``x`` of shape (batch, n_inputs); a wrong shape raises ``ValueError``.

        The state is kept as a warm start. A caller must give the target again after a clamp: a system may
        forget it (simulators do when the batch size changes, some on every clamp).
        """

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        """Set the output nudge strength ``beta`` (may be negative; 0 = free) toward ``target`` (batch, n_outputs).

        ``nudge(0)`` releases the nudge: the next ``relax`` reaches exactly the free state, whatever the target.
        It does not forget the target: ``nudge(0)`` then ``nudge(beta)`` without a target nudges toward the last
        target given. A nonzero ``beta`` with no target ever given raises ``ValueError``; a complex ``beta`` on a
        system without capability ``complex`` raises :class:`CapabilityError`.
        """

    def relax(self) -> RelaxReport:
        """Settle to equilibrium from the present state; raise :class:`NotSettled` if it cannot.

        A nudge that leaves no stable equilibrium (a negative ``beta`` outweighing the outputs' own stiffness)
        raises :class:`NotSettled` too, never ``ValueError`` and never a state of NaNs.
        """

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        """Output observables, shape (batch, n_outputs), averaged over ``reads`` repeated measurements."""

    def snapshot(self) -> Arrays:
        """Everything needed to continue exactly from here (parameters, and internal state where it exists).

        A flat dict of ``str`` keys to numpy arrays that ``np.savez`` stores without pickle: numbers of any
        shape, or a 0-d string array for text such as a random generator's state (``np.array(json.dumps(...))``);
        never objects, lists or nested dicts. The arrays are copies: later operations never change them. Keys
        are the system's own (``param.<name>`` for parameters by convention). Hardware returns its measured
        parameters; simulators also return their warm-start state and random generators.
        """

    def restore(self, snapshot: Arrays) -> None:
        """Return to a :meth:`snapshot` exactly: the same continuation follows (hardware reprograms its parameters).

        The snapshot is read, never kept or changed.
        """

    def close(self) -> None:
        """Release resources; hardware switches outputs off. Calling it again does nothing."""

    # --- "local" ---------------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> Arrays:
        """Measured dE/dθ for every parameter, mean over the batch, each of its ``ParamSpec.shape``.

        ``reads`` repeated measurements are averaged (each with its own noise); a noiseless system ignores it.
        """

    # --- "program" -------------------------------------------------------------------------------------
    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        """Request parameter increments; the device decides what it actually takes (window, precision)."""

    def read_params(self, reads: int = 1) -> Arrays:
        """Parameters as measured (capability "program" or "homeostatic"), averaged over ``reads`` read-backs.

        Hardware reads θ with noise; averaging N read-backs divides its σ by √N. A noiseless system may ignore
        ``reads``. Controllers call ``read_params()`` (no argument) when they want a single read, so a system
        whose ``read_params`` takes no argument keeps working at N = 1. The arrays are copies.
        """


class HomeostaticSystem(PhysicalSystem, Protocol):
    """Capability ``homeostatic``: parameters float and relax with the state, held by control knobs.

    Agnostic EP uses only clamp, nudge, relax, read_outputs, read_params and set_controls: it never sees an
    energy, a Jacobian or a formula of the system.
    """

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        """Set the knobs u (one per parameter, shapes as in ``read_params()``); parameters then relax with s."""

    def set_coupling(self, eps: Mapping[str, float]) -> None:
        """Optional: set the stiffness ε of each group's coupling ‖u − θ‖²/(2ε) (ε is Aeqprop's learning rate).

        A system whose coupling is fixed by its construction may omit this method; a controller that asks to
        change ε then fails with :class:`CapabilityError` before anything runs.
        """


class PerturbableSystem(PhysicalSystem, Protocol):
    """Capability ``perturb``: kick the free state and read its response (Jacobian probes, never J itself)."""

    def perturb(self, kick: np.ndarray) -> None:
        """Add ``kick`` (batch, n_state) to the last free equilibrium and let the state respond briefly.

        The response time is the system's own short probe interval, so ``read_state() - free - kick`` is,
        to first order, proportional to J·kick (J the Jacobian of the dynamics): a controller can measure
        products such as ηᵀJε from kicks and responses alone. A later ``relax()`` settles again.
        """

    def read_state(self) -> np.ndarray:
        """The free state, shape (batch, n_state)."""


class SteppableSystem(PhysicalSystem, Protocol):
    """Capability ``stepwise``: advance the relaxation a few steps at a time (continual EP)."""

    def step(self, n: int = 1) -> RelaxReport | None:
        """Advance the relaxation by ``n`` steps under the present clamp and nudge (never raises for not
        having settled); simulators return a :class:`RelaxReport` with ``settled`` telling whether it did."""


class ComplexNudgeSystem(PhysicalSystem, Protocol):
    """Capability ``complex``: the nudge may be a complex number (holomorphic EP, Laborieux & Zenke 2022).

    ``nudge(beta)`` accepts a complex ``beta``; the state then settles to a complex equilibrium and
    ``read_local`` returns complex arrays. On hardware this is an oscillating nudge read by a lock-in
    amplifier (in phase and quadrature); a simulator with smooth (holomorphic) dynamics can relax in complex
    arithmetic. Systems with non-smooth elements (ideal diodes) cannot offer it.
    """

    def nudge(self, beta: complex, target: np.ndarray | None = None) -> None:
        """Set a complex nudge strength ``beta`` toward ``target`` (batch, n_outputs)."""


class PulsedSystem(PhysicalSystem, Protocol):
    """Capability ``pulse``: conductances move only by SET/RESET pulses, which the controller counts itself.

    Pulses address every parameter whose ``ParamSpec.role`` is ``"weight"`` (the device conductances);
    ``ParamSpec.bounds`` is the *nominal* window. The controller converts a requested increment into counts
    from its own nominal device model and may verify with ``read_params()`` (each call is one noisy read).
    Other parameters (biases) are still set with ``program``.
    """

    def apply_pulses(self, counts: Mapping[str, np.ndarray]) -> None:
        """Fire signed integer pulse counts per device (positive = SET/potentiation, negative = RESET)."""


class ContrastSystem(PhysicalSystem, Protocol):
    """Capability ``contrast``: the system forms the EP update where it measures it (the fused step).

    A chip updates each device from what that device saw: it holds a weighted sum of its local terms over the
    phases of one batch and then changes its own conductance by a rate times that sum, with no gradient array
    ever leaving it. In a simulator the same step avoids every pass over gradient-sized arrays (scale, add,
    copy) that reading, combining and programming separately costs. It needs ``local`` and ``program`` too,
    and must give what they give (the conformance kit compares the two routes):
    ``accumulate_local(w_1) … accumulate_local(w_M)`` then ``program_accumulated(rates)`` equals
    ``program({n: rates[n] * Σ_m w_m · read_local()[n] at phase m})``, up to floating-point rounding.
    """

    def accumulate_local(self, weight: float, reads: int = 1) -> None:
        """Add ``weight`` × the local terms dE/dθ of the present equilibrium (as ``read_local(reads)`` would
        measure them) to what this batch has accumulated. ``clamp`` starts a new accumulation from zero."""

    def program_accumulated(self, rates: Mapping[str, float]) -> None:
        """Add ``rates[name]`` × the accumulated sum to each named parameter (others unchanged), apply the
        window as ``program`` does, and start a new accumulation from zero. An unknown name raises
        ``KeyError``; calling it with nothing accumulated since the last clamp raises ``RuntimeError``."""


class PhasesSystem(ContrastSystem, Protocol):
    """Capability ``phases``: every phase of one clamp settled and held in one call (with ``contrast``).

    The phases of an EP stencil differ only in their nudge, so a system may settle them side by side: a
    simulator as one stacked batch (at small batches a relaxation costs its calls, not its arithmetic), a chip
    with several copies of its network. It must give what the calls it replaces give (the conformance kit
    compares the two): ``accumulate_phases(betas, weights, target)`` holds what
    ``nudge(betas[m], target); relax(); accumulate_local(weights[m])`` for each m would, each phase's
    equilibrium reached from the present state rather than from the previous phase's, so equal within the
    relaxation tolerance rather than bit for bit.
    """

    def accumulate_phases(
        self, betas: Sequence[float], weights: Sequence[float], target: np.ndarray, reads: int = 1
    ) -> list[RelaxReport]:
        """Relax under each nudge ``betas[m]`` (0: the free phase) from the present state and accumulate
        ``weights[m]`` × its local terms; one report per phase. Afterwards the system is nudged by ``betas[-1]``
        (target ``target``) and sits at that phase's equilibrium. A count mismatch, or a nonzero nudge with no
        target, raises ``ValueError``; a phase with no stable equilibrium raises ``NotSettled``."""
        ...


class CostReportingSystem(PhysicalSystem, Protocol):
    """Optional: a system that can tell what its work cost in physical time and energy.

    Not a capability (nothing learns from it): the trainer reports it per training sample where a system
    offers it. Counters are cumulative since the system was built; keys a system cannot tell are left out.
    ``time_s``: physical time (a simulator's modelled settle and pulse time, a rig's measured instrument
    time); ``energy_j``: energy dissipated, total; further ``*_s`` / ``*_j`` keys break them down.
    """

    def cost(self) -> dict[str, float]:
        """Cumulative time (``*_s``) and energy (``*_j``) counters."""


def check_shape(name: str, array: np.ndarray, shape: tuple[int, ...]) -> None:
    """Raise ``ValueError`` with both shapes when ``array`` does not have ``shape``."""
    if array.shape != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")


def real_beta(beta: complex, who: str = "system") -> float:
    """``beta`` as a float for a system without capability ``complex``; a nonzero imaginary part raises
    :class:`CapabilityError` (a real number in a complex type, ``0.5 + 0j``, is accepted)."""
    if isinstance(beta, complex | np.complexfloating):
        if beta.imag != 0:
            raise CapabilityError(f"the {who} cannot take a complex nudge {beta!r} (no 'complex' capability)")
        return float(beta.real)
    return float(beta)


def nudge_target(
    beta: complex, target: np.ndarray | None, current: np.ndarray | None, batch: Callable[[], int],
    n_outputs: int, dtype: np.dtype | type = np.float64,
) -> np.ndarray | None:
    """The target a simulator keeps after ``nudge(beta, target)``: the new one, shape-checked against
    (batch, n_outputs), else the current one; a nonzero ``beta`` with no target at all is an error.

    ``batch`` is called only when a target is given, so ``nudge(0)`` works before the first clamp.
    """
    if target is not None and target is current:
        return current  # already checked (the nudged phases of one batch pass the same target)
    if target is not None:
        target = np.asarray(target, dtype=dtype)
        check_shape("nudge target", target, (batch(), n_outputs))
        return target
    if beta != 0 and current is None:
        raise ValueError("nudge: a nonzero beta needs a target")
    return current


__all__ = [
    "CAPABILITIES",
    "AeqpropError",
    "Arrays",
    "Capability",
    "CapabilityError",
    "ComplexNudgeSystem",
    "ContrastSystem",
    "CostReportingSystem",
    "HomeostaticSystem",
    "InstrumentFault",
    "LimitViolation",
    "NotSettled",
    "ParamSpec",
    "PerturbableSystem",
    "PhasesSystem",
    "PhysicalSystem",
    "PulsedSystem",
    "RelaxReport",
    "SteppableSystem",
    "SystemSpec",
    "check_shape",
    "nudge_target",
    "real_beta",
]
