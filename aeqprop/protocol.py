"""Protocol files: the TOML schema (pydantic, ``extra="forbid"``) and the composition root.

``[system]`` and ``[algorithm]`` are validated by the settings class registered under their ``kind`` (entry
points, :mod:`aeqprop.registry`); this module checks the pairing (capabilities, coupling, batch size, layer
counts, data sizes) before anything runs, and builds the objects a run needs. It names no system: the
simulators and drivers are reached only through the registry.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, SerializeAsAny, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from .data import DataConfig, DataError
from .optim import SGD, layer_rates
from .registry import RULES, SYSTEMS, RegistryError, rule_settings, system_settings
from .rules import LearningRule
from .settings import ProtocolError, Rate, RuleSettings, Section, SystemSettings
from .system import CAPABILITIES, PhysicalSystem


def _dispatch(value: Any, group: str, default: str | None) -> Any:
    """Validate a ``[system]``/``[algorithm]`` table with the settings class registered under its kind."""
    if not isinstance(value, dict):
        return value  # an instance built in code, or a type error pydantic reports
    kind = value.get("kind", default)
    if kind is None:
        raise PydanticCustomError("kind", "missing; known: {known}", {"known": ", ".join(_known(group))})
    if not isinstance(kind, str):
        raise PydanticCustomError("kind", "must be a string, got {kind!r}", {"kind": kind})
    try:  # unknown, registered twice, or a plug-in that breaks the contract: named at <section>.kind
        cls = system_settings(kind) if group == SYSTEMS else rule_settings(kind)
    except RegistryError as exc:
        raise PydanticCustomError("kind", "{reason}", {"reason": str(exc)}) from None
    return cls.model_validate({**value, "kind": kind})


def _known(group: str) -> list[str]:
    from .registry import names

    return names(group)


class SGDConfig(Section):
    """Stochastic gradient descent with per-layer rates and per-epoch decay."""

    kind: Literal["sgd"] = "sgd"
    lr: Rate | list[Rate] = Field(description="Learning rate of the weights: one value or one per layer.")
    lr_bias: Rate | list[Rate] | None = Field(default=None, description="Rates of the biases (default: lr).")
    decay: float = Field(default=1.0, gt=0, le=1, description="Multiply every rate by this after each epoch.")
    momentum: float = Field(default=0.0, ge=0, lt=1, description=(
        "Momentum m as in torch.optim.SGD: v = m*v + g, step -lr*v (0: plain SGD). The velocity is checkpointed."))
    nesterov: bool = Field(default=False, description="Nesterov momentum: step -lr*(g + m*v); needs momentum > 0.")

    @model_validator(mode="after")
    def _nesterov_needs_momentum(self) -> SGDConfig:
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov needs momentum > 0")
        return self


class RunConfig(Section):
    """Epochs, seed, batching and where results go."""

    epochs: int = Field(default=10, ge=1)
    seed: int = Field(default=0, ge=0)
    batch_size: int = Field(default=4, ge=1)
    eval_batch_size: int = Field(default=1000, ge=1)
    checkpoint_every: int = Field(default=1, ge=1, description="Epochs between checkpoints.")
    out: str = Field(default="runs", description="Parent folder of run directories when --out is not given.")
    # --- live logging (optional extras; see aeqprop.tracking) ---
    tensorboard: bool = Field(default=False, description="Write TensorBoard event files into <run>/tensorboard.")
    mlflow: bool | str = Field(default=False, description="Log to MLflow: true = <run>/mlflow.db, or a tracking URI.")
    log_every: int = Field(default=0, ge=0, description="Log batch scalars every N batches (0: per epoch only).")
    histograms: bool = Field(default=True, description="Per-layer histograms of parameters and updates (TensorBoard).")

    @model_validator(mode="after")
    def _extras_installed(self) -> RunConfig:
        """Refuse a logger whose optional package is missing now, not after the first epoch."""
        from .tracking import missing_extra

        for extra in ("tensorboard", "mlflow"):
            hint = missing_extra(extra) if getattr(self, extra) not in (False, "") else None
            if hint:
                raise ValueError(f"{extra} = {getattr(self, extra)!r} {hint}")
        return self


class Protocol(Section):
    """A whole training protocol."""

    version: Literal[1] = 1
    system: SerializeAsAny[SystemSettings]
    algorithm: SerializeAsAny[RuleSettings] = Field(default_factory=lambda: rule_settings("ep")())
    optimizer: SGDConfig | None = Field(default=None, description="Required by rules that program increments (ep).")
    data: DataConfig = Field(default_factory=DataConfig)
    run: RunConfig = Field(default_factory=RunConfig)

    @field_validator("system", mode="before")
    @classmethod
    def _system_kind(cls, value: Any) -> Any:
        return _dispatch(value, SYSTEMS, None)

    @field_validator("algorithm", mode="before")
    @classmethod
    def _algorithm_kind(cls, value: Any) -> Any:
        """``[algorithm]`` without ``kind`` means classic EP."""
        return _dispatch(value, RULES, "ep")

    @model_validator(mode="after")
    def _consistent(self) -> Protocol:
        check_pairing(self.system, self.algorithm, self.optimizer, self.run.batch_size)
        try:
            features, classes = self.data.source().shape(self.data)
        except (DataError, RegistryError) as exc:
            raise ValueError(f"data: {exc}") from None
        inputs, outputs = self.system.feature_counts()
        if (inputs, outputs) != (features, classes):
            raise ValueError(
                f"data {self.data.label!r} has {features} features and {classes} classes but the system has "
                f"{inputs} inputs and {outputs} outputs"
            )
        return self


def check_pairing(system: SystemSettings, rule: RuleSettings, optimizer: SGDConfig | None,
                  batch_size: int | None = None) -> None:
    """Raise ``ValueError`` (one line) when ``rule`` cannot train ``system`` as configured.

    Everything the settings declare is checked here, before anything is built: capabilities, the coupling,
    the batch limit, the system's own check of the rule, the optimizer section and per-layer rate lists.
    """
    caps = system.capabilities()
    unknown = set(caps) - CAPABILITIES
    if unknown:
        raise ValueError(f"system {system.kind!r} declares unknown capabilities {sorted(unknown)}; "
                         f"allowed: {sorted(CAPABILITIES)}")
    missing = rule.requires() - caps
    if missing:
        raise ValueError(
            f"algorithm {rule.kind!r} needs capabilities {sorted(rule.requires())} but "
            f"system {system.kind!r} offers {sorted(caps)}"
        )
    if rule.needs_coupling() and not system.settable_coupling():
        raise ValueError(f"algorithm {rule.kind!r} sets the coupling eps (set_coupling) but system "
                         f"{system.kind!r} has a coupling fixed by construction")
    max_batch = system.max_batch()
    if batch_size is not None and max_batch is not None and batch_size > max_batch:
        raise ValueError(f"run.batch_size = {batch_size} but system {system.kind!r} takes "
                         f"batches of at most {max_batch}")
    system.check_algorithm(rule)
    if rule.needs_optimizer() and optimizer is None:
        raise ValueError(f"algorithm {rule.kind!r} needs an [optimizer] section (kind = \"sgd\", lr = ...)")
    if not rule.needs_optimizer() and optimizer is not None:
        raise ValueError(f"algorithm {rule.kind!r} has no [optimizer] section (it sets its own rate)")
    layers = system.layer_count()
    if layers is not None:
        rule.check_layers(layers)
        if optimizer is not None:
            layer_rates(optimizer.lr, layers, "optimizer.lr")
            if optimizer.lr_bias is not None:
                layer_rates(optimizer.lr_bias, layers, "optimizer.lr_bias")


def _format_errors(source: str, error: ValidationError) -> str:
    parts = []
    for item in error.errors():
        path = list(item["loc"])
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "kind":  # raised by _dispatch for the section's kind
            path.append("kind")
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
    except RecursionError:
        raise ProtocolError(f"--set {key}: value nested too deeply") from None
    path = key.strip().split(".")
    if not all(path):
        raise ProtocolError(f"--set {text!r}: empty key")
    return path, value


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
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file") from None
    except IsADirectoryError:
        raise ProtocolError(f"{path}: is a directory, not a protocol file") from None
    except UnicodeDecodeError as exc:
        raise ProtocolError(f"{path}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ProtocolError(f"{path}: invalid TOML: nested too deeply") from None


def validate_raw(raw: dict[str, Any], source: str) -> Protocol:
    try:
        return Protocol.model_validate(raw)
    except ValidationError as exc:
        raise ProtocolError(_format_errors(source, exc)) from None
    except RecursionError:
        raise ProtocolError(f"{source}: nested too deeply") from None


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
        system = build_system(protocol.system, np.random.default_rng(system_seq))
    try:
        return _assemble(protocol, system, rule_seq, shuffle_seq)
    except BaseException:
        system.close()
        raise


def build_system(settings: SystemSettings, rng: np.random.Generator) -> PhysicalSystem:
    """``settings.build(rng)``, with a system too large for memory (or for numpy) as a one-line error."""
    try:
        return settings.build(rng)
    except MemoryError as exc:
        raise ProtocolError(f"system {settings.kind!r}: too large to build in memory ({exc})") from None
    except ValueError as exc:
        if "too big" not in str(exc) and "dimensions" not in str(exc):
            raise
        raise ProtocolError(f"system {settings.kind!r}: too large to build ({exc})") from None


def _assemble(protocol: Protocol, system: PhysicalSystem, rule_seq: np.random.SeedSequence,
              shuffle_seq: np.random.SeedSequence) -> Components:
    system.spec.require(protocol.algorithm.requires(), f"algorithm {protocol.algorithm.kind!r}")
    opt = protocol.optimizer
    optimizer = None if opt is None else SGD(system.spec.params, opt.lr, opt.lr_bias, opt.decay, opt.momentum,
                                            opt.nesterov)
    rule = protocol.algorithm.build(system, optimizer, np.random.default_rng(rule_seq))
    return Components(system, rule, np.random.default_rng(shuffle_seq))


def virtual_instrument(protocol: Protocol, transport: str = "tcp", host: str = "127.0.0.1", port: int = 0,
                       faults: str | None = None):
    """Serve the protocol's simulated system as a crossbar front-end board (``aeqprop serve``).

    The system is drawn exactly as :func:`build` draws it (same spawned seed), so a rig protocol with the same
    ``run.seed`` trains the same network. ``transport`` is "tcp" (a socket on ``host:port``) or "pty" (a
    serial board on a pseudo-terminal). Any simulated kind offering ``local`` and ``program`` can be served
    as a crossbar board, plug-ins included, and any offering ``homeostatic`` as a floating-parameter board; the
    board reports the settings' ``input_gain`` as its input gain where they have one (others: 1 V per unit).
    Returns the server (not yet started) with ``.instrument`` and ``.resource``.
    """
    from aeqprop.simulators.virtual import CrossbarBoard, FaultPlan, PtyServer, TcpServer
    from aeqprop.simulators.virtual.floating import FloatingBoard

    settings = protocol.system
    if settings.drives_hardware():
        raise ProtocolError(f"serve: the protocol's system is a {settings.kind} (real devices); "
                            "serve a simulated system instead")
    offered = set(settings.capabilities())
    floating = "homeostatic" in offered  # a floating-parameter front-end: knobs and parameter read-backs
    missing = set() if floating else {"local", "program"} - offered
    if missing:
        raise ProtocolError(f"serve: system {settings.kind!r} lacks {sorted(missing)}, which the crossbar "
                            "dialect needs (or 'homeostatic', for the floating front-end)")
    try:
        plan = FaultPlan.parse(faults)
    except ValueError as exc:
        raise ProtocolError(f"--fault: {exc}") from None
    system_seq = np.random.SeedSequence(protocol.run.seed).spawn(3)[0]
    system = protocol.system.build(np.random.default_rng(system_seq))
    # the board reports the system's volts per input unit where its settings state one (resistive kinds)
    gain = float(getattr(settings, "input_gain", 1.0))
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
    oracle = protocol.system.oracle(system)
    if oracle is None:
        raise ProtocolError(f"system {protocol.system.kind!r} has no oracle (a true gradient exists only for "
                            "simulators)")
    return oracle


def virtual_bench(protocol: Protocol, host: str = "127.0.0.1", port: int = 0, faults: str | None = None,
                  fault_on: str = "matrix"):
    """Serve the protocol's simulated network as a bench of virtual SMUs and a 707B (``aeqprop serve --bench``).

    The network is drawn as :func:`build` draws it; the nudge resistors have conductance ``algorithm.beta``.
    Each instrument gets its own TCP server: ports ``port, port+1, ...`` in the order of
    ``SmuBench.instruments()`` (``port = 0``: free ports). ``faults`` go to the instrument named ``fault_on``.
    Returns ``(bench, servers)``, the servers not yet started.
    """
    from aeqprop.simulators.resistive import ResistiveConfig
    from aeqprop.simulators.virtual import FaultPlan, SmuBench, TcpServer

    if not isinstance(protocol.system, ResistiveConfig):
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
