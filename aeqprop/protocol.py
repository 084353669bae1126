"""Protocol files: the TOML schema (pydantic, ``extra="forbid"``) and the composition root.

This is the one controller module that names concrete systems: it imports their settings models, checks the
algorithm/system pairing and data sizes before anything runs, and builds the objects a run needs.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError, model_validator

from aeqprop.drivers.floating_rig import FloatingRigConfig
from aeqprop.drivers.rig import RigConfig
from aeqprop.drivers.smu_rig import SmuRigConfig
from aeqprop.simulators.asymmetric import AsymmetricConfig
from aeqprop.simulators.hopfield import FloatingHopfieldConfig
from aeqprop.simulators.memristor import CrossbarConfig
from aeqprop.simulators.resistive import FloatingResistiveConfig, ResistiveConfig
from aeqprop.simulators.smooth import SmoothConfig
from aeqprop.simulators.spice import SpiceConfig

from .adaptive import AdaptiveReads
from .agnostic import VARIANTS, AgnosticEP, Homeostat, StabilityGuard, Variant, group_eps
from .continual import ContinualEP
from .data import SHAPES
from .estimators import NEEDS, EstimatorName
from .homeostasis import JacobianHomeostasis
from .optim import SGD, layer_rates
from .programming import NominalDevice, PulseProgrammer
from .rules import EquilibriumPropagation, LearningRule
from .system import AeqpropError, PhysicalSystem


def _union(*models: type[BaseModel], default: str | None = None) -> Any:
    """A discriminated union on ``kind`` (a single model needs no discriminator).

    With ``default``, a section that leaves ``kind`` out is read as that kind (``[algorithm]`` means EP).
    """
    if len(models) == 1:
        return models[0]
    if default is None:
        return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007 - runtime union of a tuple

    def tag(value: Any) -> str:
        return value.get("kind", default) if isinstance(value, dict) else getattr(value, "kind", default)

    tagged = tuple(Annotated[m, Tag(m.model_fields["kind"].default)] for m in models)
    return Annotated[Union[tagged], Discriminator(tag)]  # noqa: UP007 - runtime union of a tuple


#: Every system a protocol file can name. Add a new system's settings model here (and nowhere else).
SYSTEM_CONFIGS: tuple[type[BaseModel], ...] = (
    ResistiveConfig, FloatingResistiveConfig, FloatingHopfieldConfig, SmoothConfig, AsymmetricConfig,
    CrossbarConfig, SpiceConfig, RigConfig, SmuRigConfig, FloatingRigConfig,
)
SystemConfig = _union(*SYSTEM_CONFIGS)


class ProtocolError(AeqpropError):
    """A protocol file is unreadable or invalid; the message names the file, the field and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PulseProgrammingConfig(_Strict):
    """``[algorithm.programming]``: program conductances by pulses counted from a nominal device model."""

    kind: Literal["pulses"] = "pulses"
    levels: int = Field(ge=1, description="Nominal pulses from g_min to g_max.")
    a_pot: float = Field(default=math.inf, gt=0, description="Nominal potentiation nonlinearity (inf = linear).")
    a_dep: float = Field(default=math.inf, gt=0, description="Nominal depression nonlinearity (inf = linear).")
    g_min: float | None = Field(default=None, ge=0, description="Nominal window low end (default: the system's bounds).")
    g_max: float | None = Field(default=None, gt=0, description="Nominal window high end (default: the system's bounds).")
    rounding: Literal["nearest", "stochastic"] = Field(default="stochastic", description="Rounding of pulse counts.")
    write_verify: bool = Field(default=False, description="Read back and correct after each programming.")
    verify_iterations: int = Field(default=3, ge=1, description="Most correction rounds per programming.")
    verify_tolerance: float = Field(default=1.0, gt=0, description="Correct only misses larger than this (pulses).")

    def build(self, system: PhysicalSystem, rng: np.random.Generator) -> PulseProgrammer:
        bounds = [p.bounds for p in system.spec.params.values() if p.role == "weight"]
        lo = self.g_min if self.g_min is not None else min(b[0] or 0.0 for b in bounds)
        hi = self.g_max if self.g_max is not None else max((b[1] for b in bounds if b[1] is not None), default=None)
        if hi is None:
            raise ProtocolError("algorithm.programming: the system states no conductance window; set g_max")
        device = NominalDevice(lo, hi, self.levels, self.a_pot, self.a_dep)
        return PulseProgrammer(device, rng, self.rounding, self.write_verify, self.verify_iterations,
                               self.verify_tolerance)


class EPConfig(_Strict):
    """Equilibrium propagation with measured local gradients and programmed SGD updates."""

    kind: Literal["ep"] = "ep"
    estimator: EstimatorName = Field(
        default="centered", description="one-sided, random-sign, centered, stencil (O(β⁴)) or cauchy (complex)."
    )
    beta: float = Field(default=1.0, description="Nudge strength (nonzero; its sign matters for one-sided).")
    reads: int = Field(default=1, ge=1, description="Repeated reads averaged per measurement (start value if adaptive).")
    adaptive_reads: bool = Field(default=False, description="Double/halve reads to keep the estimate's SNR >= min_snr.")
    min_snr: float = Field(default=2.0, gt=0, description="Adaptive reads: SNR below which reads double.")
    max_reads: int = Field(default=64, ge=2, description="Adaptive reads: upper bound on reads.")
    programming: PulseProgrammingConfig | None = Field(
        default=None, description="Program conductances by counted pulses (needs capability 'pulse')."
    )
    points: int = Field(default=4, ge=2, description="cauchy only: complex nudges on the circle |β|.")
    homeostasis: float = Field(
        default=0.0, ge=0,
        description="Weight λ of Jacobian homeostasis (λ/2 ‖J − Jᵀ‖², measured by state kicks; needs 'perturb').",
    )
    homeostasis_params: list[str] | None = Field(
        default=None, description="Parameter groups the homeostasis term trims (default: every weight group).",
    )
    homeostasis_probes: int = Field(default=2, ge=1, description="Parameter directions probed per step.")
    homeostasis_step: float = Field(default=1e-3, gt=0, description="Size of the parameter probe.")
    homeostasis_kick: float = Field(default=1e-4, gt=0, description="Size of the state kicks.")
    homeostasis_kicks: int = Field(default=32, ge=1, description="Kick pairs per penalty measurement.")

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


class CEPConfig(_Strict):
    """Continual EP: parameters updated after every relaxation step of the nudged phase (``stepwise``)."""

    kind: Literal["cep"] = "cep"
    beta: float = Field(default=1.0, description="Nudge strength (nonzero).")
    steps: int = Field(default=10, ge=1, description="Nudged relaxation steps per batch, one update after each.")
    sweeps_per_step: int = Field(default=1, ge=1, description="Solver sweeps (settle reads) per step.")
    random_sign: bool = Field(default=False, description="Draw the sign of beta per batch.")
    reads: int = Field(default=1, ge=1, description="Repeated reads averaged per measurement.")

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


class HomeostasisConfig(_Strict):
    """The feedback loop that holds floating parameters at their set points (Aeqprop phase 2)."""

    tolerance: float = Field(default=1e-6, gt=0, description="Held when every parameter is this close to its set point (parameter units).")
    max_iterations: int = Field(default=50, ge=1, description="Knob adjustments per hold before the run stops with an error.")
    adaptive: bool = Field(default=True, description="Estimate each knob's gain from its measured response (else unit gain).")
    max_gain: float = Field(default=1024.0, ge=1, description="Largest knob multiplier the adaptive loop may use (weakly responding knobs).")
    reads: int = Field(default=1, ge=1, description="Parameter read-backs averaged per measurement; the tolerance rises to the measured noise floor.")
    stop_after: int = Field(default=3, ge=1, description="Iterations without response after which a knob rests on a stop: reported, no longer pushed.")
    margin: float | None = Field(default=0.5, gt=0, lt=1, description="Largest measured eps*lambda per group (1 - 1/response); eps is lowered past it. None: never lower eps.")
    probe_every: int = Field(default=100, ge=1, description="Batches between probes of each group's largest response to its own knobs (sets eps under margin).")


class AeqpropConfig(_Strict):
    """Agnostic EP: parameters float with the state; the controller holds them and lets them drift."""

    kind: Literal["aeqprop"] = "aeqprop"
    variant: Variant = Field(default="centered", description=f"One of {', '.join(VARIANTS)}.")
    beta: float = Field(default=0.5, gt=0, description="Nudge strength; the variant sets the two nudges' signs.")
    eps: float | list[float] = Field(description="Coupling eps of the weights (the learning rate): one value or one per layer.")
    eps_bias: float | list[float] | None = Field(default=None, description="eps of the biases (default: eps).")
    decay: float = Field(default=1.0, gt=0, le=1, description="Multiply every eps by this after each epoch.")
    reads: int = Field(default=1, ge=1, description="Repeated reads averaged per output measurement.")
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

    def build(self, system: PhysicalSystem, optimizer: SGD | None, rng: np.random.Generator) -> LearningRule:
        if optimizer is not None:
            raise ProtocolError("algorithm 'aeqprop' has no optimizer (eps is its learning rate)")
        h = self.homeostasis
        homeostat = Homeostat(h.tolerance, h.max_iterations, h.adaptive, h.max_gain, h.reads, h.stop_after)
        eps = group_eps(system.spec.params, self.eps, self.eps_bias)
        guard = None if h.margin is None else StabilityGuard(h.margin, h.probe_every)
        return AgnosticEP(self.variant, self.beta, homeostat, eps, self.decay, self.reads, guard)


#: Every learning rule a protocol file can name; each has ``requires()`` and ``build(system, optimizer, rng)``.
ALGORITHM_CONFIGS: tuple[type[BaseModel], ...] = (EPConfig, CEPConfig, AeqpropConfig)
AlgorithmConfig = _union(*ALGORITHM_CONFIGS, default="ep")


class SGDConfig(_Strict):
    """Stochastic gradient descent with per-layer rates and per-epoch decay."""

    kind: Literal["sgd"] = "sgd"
    lr: float | list[float] = Field(description="Learning rate of the weights: one value or one per layer.")
    lr_bias: float | list[float] | None = Field(default=None, description="Rates of the biases (default: lr).")
    decay: float = Field(default=1.0, gt=0, le=1, description="Multiply every rate by this after each epoch.")


class DataConfig(_Strict):
    """Which data set, where its files are, and how targets are encoded."""

    name: Literal["digits", "iris", "mnist", "fashion-mnist", "kmnist"] = "digits"
    root: str | None = Field(default=None, description="Folder holding <name>/ (default: $AEQPROP_DATA).")
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="digits and iris: held-out fraction.")
    split_seed: int = Field(default=0, description="digits and iris: seed of the stratified split.")
    train_limit: int | None = Field(default=None, gt=0, description="Use only the first N training samples.")
    test_limit: int | None = Field(default=None, gt=0, description="Use only the first N test samples.")
    target_low: float = 0.0
    target_high: float = 1.0


class RunConfig(_Strict):
    """Epochs, seed, batching and where results go."""

    epochs: int = Field(default=10, ge=1)
    seed: int = 0
    batch_size: int = Field(default=4, ge=1)
    eval_batch_size: int = Field(default=1000, ge=1)
    checkpoint_every: int = Field(default=1, ge=1, description="Epochs between checkpoints.")
    out: str = Field(default="runs", description="Parent folder of run directories when --out is not given.")


class Protocol(_Strict):
    """A whole training protocol."""

    version: Literal[1] = 1
    system: SystemConfig
    algorithm: AlgorithmConfig = Field(default_factory=EPConfig)
    optimizer: SGDConfig | None = Field(default=None, description="Required by rules that program increments (ep).")
    data: DataConfig = Field(default_factory=DataConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @model_validator(mode="before")
    @classmethod
    def _default_algorithm_kind(cls, data: Any) -> Any:
        """``[algorithm]`` without ``kind`` means classic EP (the discriminated union needs the tag)."""
        if isinstance(data, dict) and isinstance(data.get("algorithm"), dict) and "kind" not in data["algorithm"]:
            data = {**data, "algorithm": {"kind": "ep", **data["algorithm"]}}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        missing = self.algorithm.requires() - self.system.capabilities()
        if missing:
            raise ValueError(
                f"algorithm {self.algorithm.kind!r} needs capabilities {sorted(self.algorithm.requires())} but "
                f"system {self.system.kind!r} offers {sorted(self.system.capabilities())}"
            )
        features, classes = SHAPES[self.data.name]
        inputs, outputs = self.system.feature_counts()
        if (inputs, outputs) != (features, classes):
            raise ValueError(
                f"data {self.data.name!r} has {features} features and {classes} classes but the system has "
                f"{inputs} inputs and {outputs} outputs"
            )
        max_batch = getattr(self.system, "max_batch", None)
        if max_batch is not None and self.run.batch_size > max_batch():
            raise ValueError(f"run.batch_size = {self.run.batch_size} but system {self.system.kind!r} takes "
                             f"batches of at most {max_batch()}")
        check_algorithm = getattr(self.system, "check_algorithm", None)  # systems that fix part of the rule
        if check_algorithm is not None:
            check_algorithm(self.algorithm)
        if "program" in self.algorithm.requires() and self.optimizer is None:
            raise ValueError(
                f"algorithm {self.algorithm.kind!r} needs an [optimizer] section (kind = \"sgd\", lr = ...)"
            )
        if self.algorithm.kind == "aeqprop" and self.optimizer is not None:
            raise ValueError("algorithm 'aeqprop' has no [optimizer] section: eps is its learning rate")
        if self.algorithm.kind == "aeqprop" and hasattr(self.system, "hidden"):
            depth = len(self.system.hidden) + 1
            layer_rates(self.algorithm.eps, depth, "algorithm.eps")
            if self.algorithm.eps_bias is not None:
                layer_rates(self.algorithm.eps_bias, depth, "algorithm.eps_bias")
        if self.optimizer is not None and hasattr(self.system, "hidden"):
            depth = len(self.system.hidden) + 1
            layer_rates(self.optimizer.lr, depth, "optimizer.lr")
            if self.optimizer.lr_bias is not None:
                layer_rates(self.optimizer.lr_bias, depth, "optimizer.lr_bias")
        return self


def _kinds(models: tuple[type[BaseModel], ...]) -> set[str]:
    return {m.model_fields["kind"].default for m in models}


#: Tags of the discriminated unions; pydantic puts the tag into error locations (system.resistive.hidden),
#: which users never write, so it is dropped from messages (system.hidden).
_UNION_TAGS = {"system": _kinds(SYSTEM_CONFIGS), "algorithm": _kinds(ALGORITHM_CONFIGS)}


def _format_errors(source: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        path = list(item["loc"])
        if len(path) >= 2 and path[1] in _UNION_TAGS.get(str(path[0]), ()):
            del path[1]
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] in ("union_tag_invalid", "union_tag_not_found"):
            names = sorted(f"'{t}'" for t in _UNION_TAGS.get(str(path[0]), ()))
            tags = " or ".join(names) if len(names) < 3 else ", ".join(names[:-1]) + " or " + names[-1]
            got = f" (got {item['ctx']['tag']!r})" if item["type"] == "union_tag_invalid" else " (missing)"
            path.append("kind")
            msg = f"Input should be {tags}{got}"
        elif item["type"] == "extra_forbidden":
            msg = "unknown field"
        elif "input" in item and item["type"] not in ("missing",) and not isinstance(item["input"], dict):
            msg = f"{msg} (got {item['input']!r})"
        loc = ".".join(str(p) for p in path)
        parts.append(f"{loc}: {msg}" if loc else msg)
    return f"{source}: " + "; ".join(parts)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` → (path, value); the value is read as TOML, falling back to a bare string."""
    if "=" not in text:
        raise ProtocolError(f"--set {text!r}: expected section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of the raw protocol with every ``--set`` applied."""
    import copy

    data = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = data
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ProtocolError(f"--set {text!r}: {part!r} is not a section")
        node[path[-1]] = value
    return data


def read_raw(path: str | Path) -> dict[str, Any]:
    """Read a TOML file, with a one-line error naming the file and the position."""
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{path}: invalid TOML: {exc}") from None


def validate_raw(raw: dict[str, Any], source: str) -> Protocol:
    try:
        return Protocol.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(_format_errors(source, exc)) from None


def load_protocol(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Protocol:
    """Read, override and validate a protocol file."""
    return validate_raw(apply_overrides(read_raw(path), list(overrides)), str(path))


def to_dict(protocol: Protocol) -> dict[str, Any]:
    """The fully resolved protocol (defaults filled in), TOML-serialisable."""
    return protocol.model_dump(mode="json", exclude_none=True)


@dataclass
class Components:
    """Everything a run is built from, seeded from ``run.seed``."""

    system: PhysicalSystem
    rule: LearningRule
    shuffle_rng: np.random.Generator


def build(protocol: Protocol, system: PhysicalSystem | None = None) -> Components:
    """Build the system and the learning rule; independent generators are spawned from the run seed.

    ``system`` replaces the protocol's own (e.g. a rig over a replayed transcript in a benchmark).
    """
    system_seq, rule_seq, shuffle_seq = np.random.SeedSequence(protocol.run.seed).spawn(3)
    if system is None:
        system = protocol.system.build(np.random.default_rng(system_seq))
    try:
        return _assemble(protocol, system, rule_seq, shuffle_seq)
    except BaseException:
        system.close()
        raise


def _assemble(protocol: Protocol, system: PhysicalSystem, rule_seq: np.random.SeedSequence,
              shuffle_seq: np.random.SeedSequence) -> Components:
    system.spec.require(protocol.algorithm.requires(), f"algorithm {protocol.algorithm.kind!r}")
    opt = protocol.optimizer
    optimizer = None if opt is None else SGD(system.spec.params, opt.lr, opt.lr_bias, opt.decay)
    rule = protocol.algorithm.build(system, optimizer, np.random.default_rng(rule_seq))
    return Components(system, rule, np.random.default_rng(shuffle_seq))


def virtual_instrument(protocol: Protocol, transport: str = "tcp", host: str = "127.0.0.1", port: int = 0,
                       faults: str | None = None):
    """Serve the protocol's simulated system as a crossbar front-end board (``aeqprop serve``).

    The system is drawn exactly as :func:`build` draws it (same spawned seed), so a rig protocol with the same
    ``run.seed`` trains the same network. ``transport`` is "tcp" (a socket on ``host:port``) or "pty" (a
    serial board on a pseudo-terminal). Returns the server (not yet started) with ``.instrument`` and
    ``.resource``.
    """
    from aeqprop.simulators.virtual import CrossbarBoard, FaultPlan, PtyServer, TcpServer
    from aeqprop.simulators.virtual.floating import FloatingBoard

    floating = protocol.system.kind in ("hopfield-floating", "resistive-floating")
    if protocol.system.kind != "resistive" and not floating:
        raise ProtocolError(f"serve: the protocol's system is a {protocol.system.kind}; "
                            "serve a simulated system instead (resistive, or a floating one)")
    try:
        plan = FaultPlan.parse(faults)
    except ValueError as exc:
        raise ProtocolError(f"--fault: {exc}") from None
    system_seq = np.random.SeedSequence(protocol.run.seed).spawn(3)[0]
    system = protocol.system.build(np.random.default_rng(system_seq))
    gain = getattr(protocol.system, "input_gain", 1.0)
    board = (FloatingBoard(system, input_gain_v=gain, faults=plan) if floating
             else CrossbarBoard(system, input_gain_v=gain, faults=plan))
    if transport == "tcp":
        try:
            return TcpServer(board, host, port)
        except OSError as exc:
            raise ProtocolError(f"serve: cannot listen on {host}:{port}: {exc}") from None
    if transport == "pty":
        return PtyServer(board)
    raise ProtocolError(f"serve: unknown transport {transport!r}; allowed: tcp, pty")


def oracle_for(protocol: Protocol, system: PhysicalSystem) -> Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]:
    """The true-gradient function of a system built from ``protocol`` (simulators only: benchmarks, the CLI).

    A system settings model offers it as ``oracle(system)``; hardware has none.
    """
    hook = getattr(protocol.system, "oracle", None)
    if hook is None:
        raise ProtocolError(f"system {protocol.system.kind!r} has no oracle (a true gradient exists only for simulators)")
    return hook(system)


def virtual_bench(protocol: Protocol, host: str = "127.0.0.1", port: int = 0, faults: str | None = None,
                  fault_on: str = "matrix"):
    """Serve the protocol's simulated network as a bench of virtual SMUs and a 707B (``aeqprop serve --bench``).

    The network is drawn as :func:`build` draws it; the nudge resistors have conductance ``algorithm.beta``.
    Each instrument gets its own TCP server: ports ``port, port+1, ...`` in the order of
    ``SmuBench.instruments()`` (``port = 0``: free ports). ``faults`` go to the instrument named ``fault_on``.
    Returns ``(bench, servers)``, the servers not yet started.
    """
    from aeqprop.simulators.virtual import FaultPlan, SmuBench, TcpServer

    if protocol.system.kind != "resistive":
        raise ProtocolError(f"serve: the protocol's system is a {protocol.system.kind}; "
                            "serve a simulated system instead")
    try:
        plan = FaultPlan.parse(faults)
    except ValueError as exc:
        raise ProtocolError(f"--fault: {exc}") from None
    system_seq = np.random.SeedSequence(protocol.run.seed).spawn(3)[0]
    network = protocol.system.build(np.random.default_rng(system_seq))
    beta = getattr(protocol.algorithm, "beta", 1.0)
    bench = SmuBench(network, input_gain_v=protocol.system.input_gain, nudge_conductance_s=abs(beta))
    named = bench.instruments()
    if fault_on not in named:
        raise ProtocolError(f"--fault-on {fault_on!r}: allowed {', '.join(named)}")
    named[fault_on].faults = plan
    servers = []
    try:
        for offset, instrument in enumerate(named.values()):
            servers.append(TcpServer(instrument, host, port + offset if port else 0))
    except OSError as exc:
        for server in servers:
            server.stop()
        raise ProtocolError(f"serve: cannot listen on {host}:{port + len(servers)}: {exc}") from None
    return bench, servers
