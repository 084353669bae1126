"""The conformance kit: a battery of checks any :class:`~aeqprop.system.PhysicalSystem` can run.

In the spirit of scikit-learn's ``check_estimator``: a plug-in author (or a lab wiring a new rig) calls
:func:`check_system` with a zero-argument factory that returns a *fresh* system, and learns which promises of
the contract (docs/contract.md) the system keeps. Each check names itself and says what differed, so a failure
reads as a bug report rather than as a stack trace. The learning rules rely on exactly these promises: a rule
that computes ``(read_local(β) − read_local(0)) / β`` is only right when ``nudge(0)`` is the free state, a
checkpoint only resumes exactly when ``restore(snapshot())`` is exact, and a trainer only stops cleanly when a
relaxation that cannot settle raises :class:`~aeqprop.system.NotSettled`.

``hardware_safe=True`` runs only the checks that never reprogram a device (no ``program``, ``restore``,
``apply_pulses``, ``set_controls``, nor a deliberately unstable nudge): what a lab may run on a real chip.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from .system import (
    CAPABILITIES,
    AeqpropError,
    CapabilityError,
    ComplexNudgeSystem,
    ContrastSystem,
    HomeostaticSystem,
    NotSettled,
    ParamSpec,
    PerturbableSystem,
    PhasesSystem,
    PhysicalSystem,
    PulsedSystem,
    RelaxReport,
    SteppableSystem,
    SystemSpec,
)

Factory = Callable[[], PhysicalSystem]


@dataclass(frozen=True)
class CheckFailure:
    """One broken promise: the check's name and what differed."""

    check: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.check}] {self.detail}"


@dataclass
class ConformanceReport:
    """What :func:`check_system` ran, what failed and what it skipped (with the reason)."""

    passed: list[str] = field(default_factory=list)
    failures: list[CheckFailure] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failures

    def failed_checks(self) -> list[str]:
        """Names of the failed checks, in the order they ran (each once)."""
        return list(dict.fromkeys(f.check for f in self.failures))

    def __str__(self) -> str:
        lines = [f"{len(self.passed)} passed, {len(self.failures)} failed, {len(self.skipped)} skipped"]
        lines += [f"  FAIL {f}" for f in self.failures]
        lines += [f"  skip [{name}] {why}" for name, why in self.skipped.items()]
        return "\n".join(lines)


class ConformanceError(AeqpropError):
    """A system broke promises of the contract; ``report`` lists every failed check and what differed."""

    def __init__(self, report: ConformanceReport) -> None:
        self.report = report
        super().__init__(f"the system fails {len(report.failures)} conformance check(s):\n{report}")


class _Failed(Exception):
    """Raised inside a check: the promise is broken (the message says how)."""


class _Skipped(Exception):
    """Raised inside a check: it does not apply to this system (the message says why)."""


@dataclass
class _Context:
    """What every check shares: the factory, the probe inputs and the tolerances."""

    factory: Factory
    hardware_safe: bool
    x: np.ndarray
    target: np.ndarray
    beta: float
    atol: float
    rtol: float
    spec: SystemSpec

    @contextmanager
    def fresh(self) -> Iterator[PhysicalSystem]:
        """A new system from the factory, closed afterwards whatever happens."""
        system = self.factory()
        try:
            yield system
        finally:
            try:
                system.close()
            except Exception:
                pass

    def free(self, system: PhysicalSystem, x: np.ndarray | None = None) -> np.ndarray:
        """Clamp, release the nudge, relax, read the outputs."""
        system.clamp(self.x if x is None else x)
        system.nudge(0.0)
        _relaxed(system)
        return np.asarray(system.read_outputs())

    def nudged(self, system: PhysicalSystem, target: np.ndarray | None = None) -> np.ndarray:
        system.nudge(self.beta, self.target if target is None else target)
        _relaxed(system)
        return np.asarray(system.read_outputs())

    def close_enough(self, a: np.ndarray, b: np.ndarray) -> float | None:
        """None when ``a`` and ``b`` agree within ``rtol`` of their scale (at least 1), else the largest gap."""
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return np.inf
        gap = float(np.max(np.abs(a - b), initial=0.0))
        scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
        return None if gap <= self.atol + self.rtol * scale else gap


def _relaxed(system: PhysicalSystem) -> RelaxReport | None:
    report = system.relax()
    if isinstance(report, RelaxReport) and not report.settled:
        raise _Failed(f"relax() returned settled=False ({report.message!r}) instead of raising NotSettled")
    return report


def _must_raise(what: str, error: type[Exception], call: Callable[..., object], *args: object) -> None:
    """``call(*args)`` must raise ``error``: anything else, or nothing, is a failure naming ``what``."""
    try:
        call(*args)
    except error:
        return
    except Exception as exc:
        raise _Failed(f"{what} raised {type(exc).__name__}: {exc} instead of {error.__name__}") from None
    raise _Failed(f"{what} was accepted silently")


def _exact(a: np.ndarray, b: np.ndarray, atol: float) -> float | None:
    """None when equal within ``atol`` (0: bit for bit, dtype included), else the largest gap."""
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or (atol == 0 and a.dtype != b.dtype):
        return np.inf
    if a.dtype.kind in "USO" or b.dtype.kind in "USO":
        return None if np.array_equal(a, b) else np.inf
    if atol == 0:
        return None if np.array_equal(a, b, equal_nan=True) else float(np.nanmax(np.abs(a - b), initial=0.0)) or np.inf
    gap = float(np.max(np.abs(a - b), initial=0.0))
    return None if gap <= atol else gap


# --- the checks ----------------------------------------------------------------------------------------------
def check_spec(ctx: _Context) -> None:
    """``spec`` is a SystemSpec whose sizes, parameters, bounds, layers, roles and capabilities make sense."""
    spec = ctx.spec
    problems: list[str] = []
    for name in ("n_inputs", "n_outputs"):
        value = getattr(spec, name)
        if not isinstance(value, int | np.integer) or value < 1:
            problems.append(f"{name} = {value!r} is not a positive integer")
    if spec.max_batch is not None and (not isinstance(spec.max_batch, int | np.integer) or spec.max_batch < 1):
        problems.append(f"max_batch = {spec.max_batch!r} is neither None nor a positive integer")
    unknown = set(spec.capabilities) - CAPABILITIES
    if unknown:
        problems.append(f"unknown capabilities {sorted(unknown)}")
    if not spec.params:
        problems.append("spec.params is empty: a system with nothing to learn")
    for name, p in spec.params.items():
        if not isinstance(p, ParamSpec):
            problems.append(f"params[{name!r}] is a {type(p).__name__}, not a ParamSpec")
            continue
        if not all(isinstance(n, int | np.integer) and n >= 0 for n in p.shape):
            problems.append(f"{name}: shape {p.shape!r} is not a tuple of non-negative integers")
        lo, hi = p.bounds
        if any(b is not None and not np.isfinite(b) for b in (lo, hi)):
            problems.append(f"{name}: bounds {p.bounds} must be finite numbers or None")
        elif lo is not None and hi is not None and lo > hi:
            problems.append(f"{name}: bounds {p.bounds} have low > high")
        if not isinstance(p.layer, int | np.integer) or p.layer < 1:
            problems.append(f"{name}: layer {p.layer!r} is not a positive integer (1 = the first non-input layer)")
        if p.role not in ("weight", "bias"):
            problems.append(f"{name}: role {p.role!r} is neither 'weight' nor 'bias'")
    layers = sorted({p.layer for p in spec.params.values() if isinstance(p, ParamSpec)})
    if layers and layers != list(range(1, layers[-1] + 1)):
        problems.append(f"parameter layers {layers} skip a layer (expected 1..{layers[-1]})")
    if problems:
        raise _Failed("; ".join(problems))
    with ctx.fresh() as system:
        if not isinstance(system, PhysicalSystem):
            raise _Failed(f"{type(system).__name__} lacks methods of the PhysicalSystem protocol")
        if system.spec != ctx.spec:
            raise _Failed("two systems from the factory have different specs (the factory must build the same one)")
        ctx.free(system)
        if {"program", "homeostatic"} & set(spec.capabilities):
            _check_param_arrays("read_params()", system.read_params(), spec, bounds=True, rtol=ctx.rtol)


def _check_param_arrays(what: str, arrays: Mapping[str, np.ndarray], spec: SystemSpec, *, bounds: bool = False,
                        rtol: float = 0.0) -> None:
    if set(arrays) != set(spec.params):
        raise _Failed(f"{what} names {sorted(arrays)}, spec.params names {sorted(spec.params)}")
    for name, p in spec.params.items():
        value = np.asarray(arrays[name])
        if value.shape != p.shape:
            raise _Failed(f"{what}[{name!r}] has shape {value.shape}, spec says {p.shape}")
        if not np.all(np.isfinite(value)):
            raise _Failed(f"{what}[{name!r}] is not finite")
        if bounds:
            _within_bounds(what, name, np.real(value), p, rtol)


def _within_bounds(what: str, name: str, value: np.ndarray, p: ParamSpec, rtol: float) -> None:
    lo, hi = p.bounds
    slack = rtol * max([1.0, *(abs(b) for b in (lo, hi) if b is not None)])
    if lo is not None and value.size and value.min() < lo - slack:
        raise _Failed(f"{what}[{name!r}] reaches {value.min():.6g}, below its bound {lo:.6g}")
    if hi is not None and value.size and value.max() > hi + slack:
        raise _Failed(f"{what}[{name!r}] reaches {value.max():.6g}, above its bound {hi:.6g}")


#: Capability -> (method names the capability brings, a call that uses it on a clamped, relaxed system).
_USES: dict[str, tuple[tuple[str, ...], Callable[[PhysicalSystem, _Context], object]]] = {
    "local": (("read_local",), lambda s, c: s.read_local()),
    "program": (("program", "read_params"), lambda s, c: s.program({})),
    "homeostatic": (("set_controls", "read_params"), lambda s, c: cast(HomeostaticSystem, s).set_controls({})),
    "perturb": (("perturb", "read_state"), lambda s, c: cast(PerturbableSystem, s).read_state()),
    "stepwise": (("step",), lambda s, c: cast(SteppableSystem, s).step(1)),
    "complex": ((), lambda s, c: cast(ComplexNudgeSystem, s).nudge(0.5j * c.beta, c.target)),
    "pulse": (("apply_pulses",), lambda s, c: cast(PulsedSystem, s).apply_pulses({})),
    "contrast": (("accumulate_local", "program_accumulated"),
                 lambda s, c: cast(ContrastSystem, s).accumulate_local(1.0)),
    "phases": (("accumulate_phases",),
               lambda s, c: cast(PhasesSystem, s).accumulate_phases([c.beta], [1.0], c.target)),
}
#: Methods every system has (the base protocol): a missing capability must raise from them, not be absent.
_BASE_METHODS = {"read_local", "program"}


def check_capabilities(ctx: _Context) -> None:
    """Offered capabilities work and bring their methods; a missing one raises CapabilityError from its method."""
    offered = set(ctx.spec.capabilities)
    with ctx.fresh() as system:
        ctx.free(system)
        for capability, (methods, use) in _USES.items():
            if capability in offered:
                absent = [m for m in methods if not callable(getattr(system, m, None))]
                if absent:
                    raise _Failed(f"capability {capability!r} is offered but {absent} are missing")
                continue
            own = [m for m in methods if m != "read_params"]  # read_params is shared by two capabilities
            if own and not _BASE_METHODS & set(own) and not any(callable(getattr(system, m, None)) for m in own):
                continue  # an optional method left out altogether is fine
            _must_raise(f"using capability {capability!r}, which is not offered,", CapabilityError, use, system, ctx)
    with ctx.fresh() as system:
        _use_offered(system, ctx, offered)


def _use_offered(system: PhysicalSystem, ctx: _Context, offered: set[str]) -> None:
    """Each offered capability, used once the way a learning rule uses it, returns what the contract says."""
    spec = ctx.spec
    ctx.free(system)
    if "local" in offered:
        _check_param_arrays("read_local()", system.read_local(), spec)
    if "homeostatic" in offered and not ctx.hardware_safe:
        cast(HomeostaticSystem, system).set_controls(system.read_params())
    if "perturb" in offered:
        probed = cast(PerturbableSystem, system)
        state = np.asarray(probed.read_state())
        if state.ndim != 2 or state.shape[0] != ctx.x.shape[0]:
            raise _Failed(f"read_state() has shape {state.shape}, expected (batch={ctx.x.shape[0]}, n_state)")
        probed.perturb(np.zeros_like(state))
        if np.asarray(probed.read_state()).shape != state.shape:
            raise _Failed("read_state() changed shape after perturb()")
    if "stepwise" in offered:
        report = cast(SteppableSystem, system).step(1)
        if report is not None and not isinstance(report, RelaxReport):
            raise _Failed(f"step() returned a {type(report).__name__}, not a RelaxReport or None")
    if "complex" in offered:
        cast(ComplexNudgeSystem, system).nudge(0.5j * ctx.beta, ctx.target)
        _relaxed(system)
        if "local" in offered:
            _check_param_arrays("read_local() under a complex nudge", system.read_local(), spec)
        system.nudge(0.0)
        _relaxed(system)
    if not ctx.hardware_safe:
        if "program" in offered:
            system.program({name: np.zeros(p.shape) for name, p in spec.params.items()})
        if "contrast" in offered:
            fused = cast(ContrastSystem, system)
            fused.accumulate_local(1.0)
            fused.program_accumulated({})
        if "phases" in offered and "contrast" in offered:
            reports = cast(PhasesSystem, system).accumulate_phases([ctx.beta], [1.0], ctx.target)
            if not isinstance(reports, list) or len(reports) != 1:
                raise _Failed(f"accumulate_phases() with one phase returned {reports!r}, not [RelaxReport]")
            cast(ContrastSystem, system).program_accumulated({})
        if "pulse" in offered:
            cast(PulsedSystem, system).apply_pulses(
                {name: np.zeros(p.shape, dtype=np.int64) for name, p in spec.params.items() if p.role == "weight"})


def check_inputs(ctx: _Context) -> None:
    """clamp and nudge reject a wrong width, and a batch above ``max_batch``, with a ValueError."""
    spec = ctx.spec
    def wide_target(s: PhysicalSystem) -> None:
        s.clamp(ctx.x)
        s.nudge(ctx.beta, np.zeros((ctx.x.shape[0], spec.n_outputs + 1)))

    bad: list[tuple[str, Callable[[PhysicalSystem], object]]] = [
        (f"clamp of width {spec.n_inputs + 1}", lambda s: s.clamp(np.zeros((1, spec.n_inputs + 1)))),
        ("clamp of a 1-D array", lambda s: s.clamp(np.zeros(spec.n_inputs))),
        (f"nudge target of width {spec.n_outputs + 1}", wide_target),
    ]
    if spec.max_batch is not None:
        too_many = np.zeros((spec.max_batch + 1, spec.n_inputs))
        bad.append((f"clamp of a batch of {spec.max_batch + 1} (max_batch {spec.max_batch})",
                    lambda s: s.clamp(too_many)))
    for what, call in bad:
        with ctx.fresh() as system:
            _must_raise(what, ValueError, call, system)


def check_determinism(ctx: _Context) -> None:
    """Two fresh systems given the same clamps and nudges reach the same equilibria (within ``atol``)."""
    runs = []
    for _ in range(2):
        with ctx.fresh() as system:
            runs.append((ctx.free(system), ctx.nudged(system)))
    for phase, a, b in (("free", runs[0][0], runs[1][0]), ("nudged", runs[0][1], runs[1][1])):
        gap = _exact(b, a, ctx.atol)
        if gap is not None:
            raise _Failed(f"{phase} outputs of two fresh systems differ by {gap:.3g} (atol {ctx.atol:g})")


def check_batch(ctx: _Context) -> None:
    """A batch relaxes to what its samples reach one by one; ``read_local`` is the mean over the batch."""
    if ctx.x.shape[0] < 2:
        raise _Skipped(f"max_batch = {ctx.spec.max_batch}: no batch to compare with its samples")
    if "homeostatic" in ctx.spec.capabilities:
        raise _Skipped("homeostatic: the parameters settle with the whole batch, which couples its samples")
    local = "local" in ctx.spec.capabilities
    with ctx.fresh() as system:
        free, nudged = ctx.free(system), ctx.nudged(system)
        batch_local = system.read_local() if local else None
    singles_free, singles_nudged, singles_local = [], [], []
    with ctx.fresh() as system:
        for i in range(ctx.x.shape[0]):
            singles_free.append(ctx.free(system, ctx.x[i : i + 1])[0])
            singles_nudged.append(ctx.nudged(system, ctx.target[i : i + 1])[0])
            if local:
                singles_local.append(system.read_local())
    for phase, whole, parts in (("free", free, singles_free), ("nudged", nudged, singles_nudged)):
        for i, part in enumerate(parts):
            gap = ctx.close_enough(whole[i], part)
            if gap is not None:
                raise _Failed(f"{phase} outputs of sample {i} differ by {gap:.3g} between the batch and the sample "
                              f"alone (rtol {ctx.rtol:g})")
    if batch_local is not None:
        for name in ctx.spec.params:
            mean = np.mean([np.asarray(s[name]) for s in singles_local], axis=0)
            gap = ctx.close_enough(batch_local[name], mean)
            if gap is not None:
                raise _Failed(f"read_local()[{name!r}] of the batch differs by {gap:.3g} from the mean of its "
                              f"samples' reads (it must be the batch mean; rtol {ctx.rtol:g})")


def check_nudge_zero(ctx: _Context) -> None:
    """``nudge(0)`` is the free state whatever the target, and a released nudge returns to it."""
    with ctx.fresh() as system:
        free = ctx.free(system)
    with ctx.fresh() as system:
        system.clamp(ctx.x)
        system.nudge(0.0, ctx.target)
        _relaxed(system)
        with_target = np.asarray(system.read_outputs())
        gap = _exact(with_target, free, ctx.atol)
        if gap is not None:
            raise _Failed(f"nudge(0, target) moved the free outputs by {gap:.3g}: a zero nudge must ignore its target")
        nudged = ctx.nudged(system)
        if _exact(nudged, free, 0.0) is None:
            raise _Failed(f"nudge({ctx.beta:g}, target) left the outputs exactly at the free state: the nudge does "
                          "nothing")
        system.nudge(0.0)
        _relaxed(system)
        gap = ctx.close_enough(np.asarray(system.read_outputs()), free)
        if gap is not None:
            raise _Failed(f"after a nudged phase, nudge(0) and relax() end {gap:.3g} away from the free state "
                          f"(rtol {ctx.rtol:g})")
        system.nudge(ctx.beta)  # no target: the last one given is kept through nudge(0)
        _relaxed(system)
        gap = ctx.close_enough(np.asarray(system.read_outputs()), nudged)
        if gap is not None:
            raise _Failed(f"nudge(beta) without a target after nudge(0) ends {gap:.3g} away from nudge(beta, target):"
                          " nudge(0) must keep the target")


def check_snapshot(ctx: _Context) -> None:
    """snapshot() is a flat mapping of str to numpy arrays (no objects) that later operations never change; so
    are the arrays read_outputs, read_local and read_params return (copies, not views of the system's state)."""
    with ctx.fresh() as system:
        outputs = {"": ctx.free(system)}
        snap = system.snapshot()
        _check_snapshot_arrays(snap)
        reads = {"read_outputs()": outputs}
        if "local" in ctx.spec.capabilities:
            reads["read_local()"] = system.read_local()
        if {"program", "homeostatic"} & set(ctx.spec.capabilities):
            reads["read_params()"] = system.read_params()
        frozen = {k: np.array(v, copy=True) for k, v in snap.items()}
        frozen_reads = {what: {k: np.array(v, copy=True) for k, v in r.items()} for what, r in reads.items()}
        ctx.nudged(system)
        ctx.free(system, ctx.x[::-1].copy())
        if "program" in ctx.spec.capabilities and not ctx.hardware_safe:
            system.program(_steps(ctx.spec, 0.1))
        _unchanged("snapshot()", snap, frozen, "the system's later operations")
        for what, r in reads.items():
            _unchanged(what, r, frozen_reads[what], "the system's later operations")


def _check_snapshot_arrays(snap: Mapping[str, np.ndarray]) -> None:
    if not isinstance(snap, Mapping):
        raise _Failed(f"snapshot() returned a {type(snap).__name__}, not a mapping of arrays")
    for key, value in snap.items():
        if not isinstance(key, str):
            raise _Failed(f"snapshot() key {key!r} is not a string")
        if not isinstance(value, np.ndarray):
            raise _Failed(f"snapshot()[{key!r}] is a {type(value).__name__}, not a numpy array")
        if value.dtype.hasobject:
            raise _Failed(f"snapshot()[{key!r}] has object dtype (np.savez would need pickle to store it)")


def _unchanged(what: str, snap: Mapping[str, np.ndarray], frozen: Mapping[str, np.ndarray], by: str) -> None:
    for key, value in frozen.items():
        if _exact(snap[key], value, 0.0) is not None:
            where = f"{what}[{key!r}]" if key else what
            raise _Failed(f"{where} was changed by {by}: it shares memory with the system (it must be a copy)")


def check_restore(ctx: _Context) -> None:
    """restore(snapshot()) returns exactly: the same snapshot, and the same continuation as from the original."""
    with ctx.fresh() as system:
        ctx.free(system)
        ctx.nudged(system)
        snap = system.snapshot()
        frozen = {k: np.array(v, copy=True) for k, v in snap.items()}

        def continuation() -> list[np.ndarray]:
            out = [ctx.free(system, ctx.x[::-1].copy()), ctx.nudged(system, ctx.target[::-1].copy())]
            if "program" in ctx.spec.capabilities:
                system.program(_steps(ctx.spec, 0.1))
                out.append(ctx.free(system))
            return out

        first = continuation()
        system.restore(snap)
        _unchanged("the snapshot passed to restore()", snap, frozen, "restore() and what followed")
        again = system.snapshot()
        if set(again) != set(frozen):
            raise _Failed(f"snapshot() after restore() has keys {sorted(set(again) ^ set(frozen))} that differ")
        for key, value in frozen.items():
            gap = _exact(again[key], value, ctx.atol)
            if gap is not None:
                raise _Failed(f"snapshot()[{key!r}] after restore() differs from the one restored by {gap:.3g}")
        second = continuation()
        _unchanged("the snapshot passed to restore()", snap, frozen, "the operations after restore()")
        for step, (a, b) in enumerate(zip(first, second, strict=True)):
            gap = _exact(b, a, ctx.atol)
            if gap is not None:
                raise _Failed(f"after restore(), step {step} of the same continuation gives outputs {gap:.3g} away "
                              f"from the first time (atol {ctx.atol:g})")


def _steps(spec: SystemSpec, size: float) -> dict[str, np.ndarray]:
    """A small deterministic increment for every parameter (alternating signs, ``size`` of its bound window)."""
    out = {}
    for name, p in spec.params.items():
        lo, hi = p.bounds
        scale = size * (hi - lo) if lo is not None and hi is not None else size
        signs = np.where(np.arange(int(np.prod(p.shape))) % 2 == 0, 1.0, -1.0).reshape(p.shape)
        out[name] = scale * signs
    return out


def check_program(ctx: _Context) -> None:
    """program keeps every parameter inside its bounds and rejects unknown names and wrong shapes, typed."""
    if "program" not in ctx.spec.capabilities:
        raise _Skipped("the system does not offer 'program'")
    bounded = {name: p for name, p in ctx.spec.params.items() if p.bounds != (None, None)}
    with ctx.fresh() as system:
        ctx.free(system)
        for sign in (1.0, -1.0):
            before = system.read_params()
            delta = {}
            for name, p in bounded.items():
                lo, hi = p.bounds
                reach = max([1.0, float(np.max(np.abs(before[name]), initial=0.0)),
                             *(abs(b) for b in (lo, hi) if b is not None)])
                delta[name] = np.full(p.shape, 10.0 * sign * reach)
            system.program(delta)
            after = system.read_params()
            for name, p in bounded.items():
                _within_bounds(f"read_params() after program(±10×window, sign {sign:+g})", name,
                               np.real(np.asarray(after[name])), p, ctx.rtol)
        wrong: list[tuple[str, dict[str, np.ndarray], type[Exception]]] = [
            ("an unknown parameter name", {"__no_such_parameter__": np.zeros(1)}, KeyError),
            ("a wrong shape", {next(iter(ctx.spec.params)): np.zeros((1, 2, 3, 4, 5))}, ValueError),
        ]
        for what, delta, error in wrong:
            _must_raise(f"program() with {what}", error, system.program, delta)


#: Phases of the contrast check: (nudge as a multiple of β, weight × β). Three phases with weights that do not
#: sum to zero, so that a fused step which assumes two phases, or a centered stencil, is caught.
CONTRAST_PHASES = ((1.0, 1.0), (0.0, -0.25), (0.5, -0.5))


def check_contrast(ctx: _Context) -> None:
    """The fused step (capability ``contrast``) programs what reading, combining and programming would:
    ``accumulate_local(w_m)`` over phases, then ``program_accumulated(rates)``, ends at the parameters of
    ``program({n: rates[n] · Σ_m w_m read_local()[n]})`` (within 1 % of the update, plus ``atol``); ``clamp``
    and ``program_accumulated`` start a new accumulation; an unknown name raises ``KeyError``."""
    offered = set(ctx.spec.capabilities)
    if "contrast" not in offered:
        raise _Skipped("the system does not offer 'contrast'")
    if not {"local", "program"} <= offered:
        raise _Failed(f"'contrast' is offered without 'local' and 'program' (offers {sorted(offered)})")
    phases = [(m * ctx.beta, w / ctx.beta) for m, w in CONTRAST_PHASES]
    with ctx.fresh() as system:
        before = {k: np.array(v, dtype=float, copy=True) for k, v in system.read_params().items()}
        ctx.free(system)
        combined: dict[str, np.ndarray] = {}
        for beta, weight in phases:
            system.nudge(beta, ctx.target)
            _relaxed(system)
            for name, value in system.read_local().items():
                combined[name] = combined.get(name, 0.0) + weight * np.real(np.asarray(value)).astype(float)
        # rates that move each parameter by about 1 % of its present scale
        rates = {}
        for name, g in combined.items():
            peak = float(np.max(np.abs(g), initial=0.0))
            scale = max(float(np.max(np.abs(before[name]), initial=0.0)), 1e-3)
            rates[name] = -0.01 * scale / peak if peak > 0 else 0.0
        system.program({name: rates[name] * g for name, g in combined.items()})
        expected = {k: np.asarray(v, dtype=float) for k, v in system.read_params().items()}
    with ctx.fresh() as system:
        fused = _accumulate_one_by_one(ctx, system, phases)
        fused.program_accumulated(rates)
        _same_update(ctx, "program_accumulated()", "program() of the combined read_local()", system, expected,
                     before)
        _must_raise("program_accumulated() right after program_accumulated() (nothing accumulated)",
                    RuntimeError, fused.program_accumulated, rates)
        fused.accumulate_local(1.0)
        system.clamp(ctx.x)
        _must_raise("program_accumulated() after a clamp (which starts a new accumulation)",
                    RuntimeError, fused.program_accumulated, rates)
        system.nudge(0.0)
        _relaxed(system)
        fused.accumulate_local(1.0)
        _must_raise("program_accumulated() with an unknown parameter name", KeyError,
                    fused.program_accumulated, {"__no_such_parameter__": 1.0})


def _accumulate_one_by_one(
    ctx: _Context, system: PhysicalSystem, phases: list[tuple[float, float]]
) -> ContrastSystem:
    """The free equilibrium, then each (nudge, weight) phase relaxed and held with ``accumulate_local``."""
    fused = cast(ContrastSystem, system)
    ctx.free(system)
    for beta, weight in phases:
        system.nudge(beta, ctx.target)
        _relaxed(system)
        fused.accumulate_local(weight)
    return fused


def _same_update(
    ctx: _Context, what: str, reference: str, system: PhysicalSystem, expected: Mapping[str, np.ndarray],
    before: Mapping[str, np.ndarray],
) -> None:
    """Every parameter of ``system`` within 1 % of its update (``expected − before``) plus ``atol`` of ``expected``."""
    got = {k: np.asarray(v, dtype=float) for k, v in system.read_params().items()}
    for name in ctx.spec.params:
        update = float(np.max(np.abs(expected[name] - before[name]), initial=0.0))
        gap = float(np.max(np.abs(got[name] - expected[name]), initial=0.0))
        if gap > ctx.atol + 0.01 * update:
            raise _Failed(f"{what} left {name!r} {gap:.3g} away from {reference} (update {update:.3g}; allowed 1 % "
                          f"of it + atol {ctx.atol:g})")


def check_phases(ctx: _Context) -> None:
    """All phases in one call (capability ``phases``) hold what the phases run one by one hold:
    ``accumulate_phases(betas, weights, target)`` then ``program_accumulated(rates)`` ends at the parameters of
    ``nudge``/``relax``/``accumulate_local`` per phase then ``program_accumulated`` (within 1 % of the update,
    plus ``atol``); one ``RelaxReport`` per phase; the system is left at the last phase's equilibrium (its
    outputs are the nudged outputs, and a free last phase leaves the free outputs); a count mismatch raises
    ``ValueError``."""
    offered = set(ctx.spec.capabilities)
    if "phases" not in offered:
        raise _Skipped("the system does not offer 'phases'")
    if "contrast" not in offered:
        raise _Failed(f"'phases' is offered without 'contrast' (offers {sorted(offered)})")
    phases = [(m * ctx.beta, w / ctx.beta) for m, w in CONTRAST_PHASES]  # a free phase between nudged ones
    betas, weights = [b for b, _ in phases], [w for _, w in phases]
    rates = {name: -0.01 for name in ctx.spec.params}
    with ctx.fresh() as system:
        before = {k: np.array(v, dtype=float, copy=True) for k, v in system.read_params().items()}
        fused = _accumulate_one_by_one(ctx, system, phases)
        last = np.asarray(system.read_outputs())
        fused.program_accumulated(rates)
        expected = {k: np.asarray(v, dtype=float) for k, v in system.read_params().items()}
    with ctx.fresh() as system:
        together = cast(PhasesSystem, system)
        system.clamp(ctx.x)
        reports = together.accumulate_phases(betas, weights, ctx.target)
        if not isinstance(reports, list) or len(reports) != len(phases) or not all(
                isinstance(r, RelaxReport) for r in reports):
            raise _Failed(f"accumulate_phases() returned {reports!r}, not one RelaxReport per phase")
        gap = ctx.close_enough(np.asarray(system.read_outputs()), last)
        if gap is not None:
            raise _Failed(f"after accumulate_phases() the outputs are {gap:.3g} away from the last phase's "
                          f"(nudge {betas[-1]:g}) equilibrium")
        together.program_accumulated(rates)
        _same_update(ctx, "accumulate_phases() then program_accumulated()", "the phases run one by one", system,
                     expected, before)
        free = ctx.free(system)
        together.accumulate_phases([ctx.beta, 0.0], [1.0, 0.0], ctx.target)
        gap = ctx.close_enough(np.asarray(system.read_outputs()), free)
        if gap is not None:
            raise _Failed(f"accumulate_phases() with a free last phase left the outputs {gap:.3g} away from the "
                          "free equilibrium")
        _must_raise("accumulate_phases() with two nudges and one weight", ValueError,
                    together.accumulate_phases, [ctx.beta, -ctx.beta], [1.0], ctx.target)


#: Nudges strong and negative enough to leave no stable equilibrium in an energy-based system.
UNSTABLE_BETAS = (-1e3, -1e6)


def check_unstable_nudge(ctx: _Context) -> None:
    """A nudge with no stable equilibrium raises NotSettled (never a bare ValueError or a silent NaN)."""
    for beta in UNSTABLE_BETAS:
        with ctx.fresh() as system:
            system.clamp(ctx.x)
            system.nudge(beta, ctx.target)
            try:
                with np.errstate(all="ignore"):
                    _relaxed(system)
                    outputs = np.asarray(system.read_outputs())
            except NotSettled:
                continue
            except _Failed:
                raise
            except Exception as exc:
                raise _Failed(f"relax() under nudge({beta:g}) raised {type(exc).__name__}: {exc} instead of "
                              "NotSettled") from None
            if not np.all(np.isfinite(outputs)):
                raise _Failed(f"relax() under nudge({beta:g}) returned with non-finite outputs instead of raising "
                              "NotSettled")


class _Errors(logging.Handler):
    """Collects the error records logged while it is attached to the root logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check_close(ctx: _Context) -> None:
    """close() may be called twice, and on a system that never ran: the second call does nothing (no error
    raised, none logged)."""
    for used in (False, True):
        system = ctx.factory()
        if used:
            ctx.free(system)
        system.close()
        errors = _Errors()
        logging.getLogger().addHandler(errors)
        try:
            system.close()
        except Exception as exc:
            raise _Failed(f"a second close() on a {'used' if used else 'fresh'} system raised "
                          f"{type(exc).__name__}: {exc}") from None
        finally:
            logging.getLogger().removeHandler(errors)
        if errors.messages:
            raise _Failed(f"a second close() on a {'used' if used else 'fresh'} system logged "
                          f"{len(errors.messages)} error(s), first: {errors.messages[0]}")


#: Every check, in the order it runs: name -> (function, reprograms a device?).
CHECKS: dict[str, tuple[Callable[[_Context], None], bool]] = {
    "spec": (check_spec, False),
    "capabilities": (check_capabilities, False),
    "inputs": (check_inputs, False),
    "determinism": (check_determinism, False),
    "batch": (check_batch, False),
    "nudge-zero": (check_nudge_zero, False),
    "snapshot": (check_snapshot, False),
    "restore": (check_restore, True),
    "program": (check_program, True),
    "contrast": (check_contrast, True),
    "phases": (check_phases, True),
    "unstable-nudge": (check_unstable_nudge, True),
    "close": (check_close, False),
}


def check_system(
    factory: Factory,
    *,
    hardware_safe: bool = False,
    batch: int = 3,
    beta: float = 0.5,
    seed: int = 0,
    atol: float = 0.0,
    rtol: float = 1e-4,
    checks: list[str] | tuple[str, ...] | None = None,
    raise_on_failure: bool = True,
) -> ConformanceReport:
    """Run the conformance checks on systems from ``factory`` (a zero-argument callable returning a fresh system).

    The factory must build the *same* system each call (same seed, same parameters); each check takes fresh
    ones and closes them. Probe inputs are uniform in [0, 1) (``batch`` rows, fewer if ``max_batch`` says so)
    with targets in [0, 1); ``beta`` is the nudge used. ``atol`` bounds what may differ between two runs that
    should be identical (0: bit for bit; hardware needs its read noise here), ``rtol`` what may differ between
    two routes to the same equilibrium (a batch and its samples; relative to the outputs' scale, at least 1).
    ``hardware_safe`` skips the checks that reprogram a device. Returns the report; raises
    :class:`ConformanceError` listing every failure unless ``raise_on_failure`` is false.
    """
    names = list(CHECKS) if checks is None else list(checks)
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise ValueError(f"unknown checks {unknown}; known: {list(CHECKS)}")
    report = ConformanceReport()
    probe = factory()
    try:
        spec = probe.spec
    finally:
        try:
            probe.close()
        except Exception:  # a broken close() is reported by the "close" check
            pass
    rows = batch if spec.max_batch is None else max(1, min(batch, spec.max_batch))
    rng = np.random.default_rng(seed)
    ctx = _Context(factory, hardware_safe, rng.uniform(0.0, 1.0, (rows, spec.n_inputs)),
                   rng.uniform(0.0, 1.0, (rows, spec.n_outputs)), beta, atol, rtol, spec)
    for name in names:
        run, reprograms = CHECKS[name]
        if reprograms and hardware_safe:
            report.skipped[name] = "reprograms the device (hardware_safe=True)"
            continue
        try:
            run(ctx)
        except _Skipped as why:
            report.skipped[name] = str(why)
        except _Failed as exc:
            report.failures.append(CheckFailure(name, str(exc)))
        except Exception as exc:
            report.failures.append(CheckFailure(name, f"raised {type(exc).__name__}: {exc}"))
        else:
            report.passed.append(name)
    if report.failures and raise_on_failure:
        raise ConformanceError(report)
    return report


__all__ = ["CHECKS", "CheckFailure", "ConformanceError", "ConformanceReport", "check_system"]
