"""Protocol files: the TOML schema (pydantic, ``extra="forbid"``) and the composition root.

This is the one controller module that names concrete systems: it imports their settings models, checks the
algorithm/system pairing and data sizes before anything runs, and builds the objects a run needs.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from aeqprop.simulators.memristor import CrossbarConfig
from aeqprop.simulators.resistive import ResistiveConfig

from .adaptive import AdaptiveReads
from .data import SHAPES
from .estimators import EstimatorName
from .optim import SGD, layer_rates
from .programming import NominalDevice, PulseProgrammer
from .rules import EquilibriumPropagation, LearningRule
from .system import AeqpropError, PhysicalSystem

def _union(*models: type[BaseModel]) -> Any:
    """A discriminated union on ``kind`` (a single model needs no discriminator)."""
    if len(models) == 1:
        return models[0]
    return Annotated[Union[models], Field(discriminator="kind")]  # noqa: UP007 - runtime union of a tuple


#: Every system a protocol file can name. Add a new system's settings model here (and nowhere else).
SYSTEM_CONFIGS: tuple[type[BaseModel], ...] = (ResistiveConfig, CrossbarConfig)
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
    estimator: EstimatorName = Field(default="centered", description="one-sided, random-sign or centered.")
    beta: float = Field(default=1.0, description="Nudge strength (nonzero; its sign matters for one-sided).")
    reads: int = Field(default=1, ge=1, description="Repeated reads averaged per measurement (start value if adaptive).")
    adaptive_reads: bool = Field(default=False, description="Double/halve reads to keep the estimate's SNR >= min_snr.")
    min_snr: float = Field(default=2.0, gt=0, description="Adaptive reads: SNR below which reads double.")
    max_reads: int = Field(default=64, ge=2, description="Adaptive reads: upper bound on reads.")
    programming: PulseProgrammingConfig | None = Field(
        default=None, description="Program conductances by counted pulses (needs capability 'pulse')."
    )

    @model_validator(mode="after")
    def _nonzero(self) -> EPConfig:
        if self.beta == 0:
            raise ValueError("beta must be nonzero")
        return self

    def requires(self) -> frozenset[str]:
        extra = {"pulse"} if self.programming is not None else set()
        return EquilibriumPropagation.requires | extra

    def build(self, system: PhysicalSystem, optimizer: SGD | None, rng: np.random.Generator) -> LearningRule:
        if optimizer is None:
            raise ProtocolError("algorithm 'ep' needs an [optimizer] section")
        programmer = None if self.programming is None else self.programming.build(system, rng)
        adaptive = AdaptiveReads(self.reads, self.min_snr, max_reads=self.max_reads) if self.adaptive_reads else None
        return EquilibriumPropagation(self.estimator, self.beta, optimizer, rng, self.reads, programmer, adaptive)


#: Every learning rule a protocol file can name; each has ``requires()`` and ``build(system, optimizer, rng)``.
ALGORITHM_CONFIGS: tuple[type[BaseModel], ...] = (EPConfig,)
AlgorithmConfig = _union(*ALGORITHM_CONFIGS)


class SGDConfig(_Strict):
    """Stochastic gradient descent with per-layer rates and per-epoch decay."""

    kind: Literal["sgd"] = "sgd"
    lr: float | list[float] = Field(description="Learning rate of the weights: one value or one per layer.")
    lr_bias: float | list[float] | None = Field(default=None, description="Rates of the biases (default: lr).")
    decay: float = Field(default=1.0, gt=0, le=1, description="Multiply every rate by this after each epoch.")


class DataConfig(_Strict):
    """Which data set, where its files are, and how targets are encoded."""

    name: Literal["digits", "mnist", "fashion-mnist", "kmnist"] = "digits"
    root: str | None = Field(default=None, description="Folder holding <name>/ (default: $AEQPROP_DATA).")
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="digits only: held-out fraction.")
    split_seed: int = Field(default=0, description="digits only: seed of the stratified split.")
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
        if self.algorithm.kind == "ep" and self.optimizer is None:
            raise ValueError("algorithm 'ep' needs an [optimizer] section (kind = \"sgd\", lr = ...)")
        if self.optimizer is not None and hasattr(self.system, "hidden"):
            depth = len(self.system.hidden) + 1
            layer_rates(self.optimizer.lr, depth, "optimizer.lr")
            if self.optimizer.lr_bias is not None:
                layer_rates(self.optimizer.lr_bias, depth, "optimizer.lr_bias")
        return self


def _format_errors(source: str, error: ValidationError) -> str:
    parts = []
    # A discriminated union puts the chosen kind into the location (system.crossbar.hidden): drop it.
    tags = {m.model_fields["kind"].default for m in (*SYSTEM_CONFIGS, *ALGORITHM_CONFIGS)}
    for item in error.errors():
        loc = ".".join(str(p) for i, p in enumerate(item["loc"]) if not (i == 1 and p in tags))
        msg = item["msg"].removeprefix("Value error, ")
        if item["type"] == "union_tag_invalid":
            ctx = item.get("ctx", {})
            allowed = str(ctx.get("expected_tags", "")).replace(", ", " or ")
            loc, msg = f"{loc}.kind", f"Input should be {allowed} (got {ctx.get('tag')!r})"
        elif item["type"] == "extra_forbidden":
            msg = "unknown field"
        elif "input" in item and item["type"] not in ("missing",) and not isinstance(item["input"], dict):
            msg = f"{msg} (got {item['input']!r})"
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


def build(protocol: Protocol) -> Components:
    """Build the system and the learning rule; independent generators are spawned from the run seed."""
    system_seq, rule_seq, shuffle_seq = np.random.SeedSequence(protocol.run.seed).spawn(3)
    system = protocol.system.build(np.random.default_rng(system_seq))
    system.spec.require(protocol.algorithm.requires(), f"algorithm {protocol.algorithm.kind!r}")
    opt = protocol.optimizer
    optimizer = None if opt is None else SGD(system.spec.params, opt.lr, opt.lr_bias, opt.decay)
    rule = protocol.algorithm.build(system, optimizer, np.random.default_rng(rule_seq))
    return Components(system, rule, np.random.default_rng(shuffle_seq))
