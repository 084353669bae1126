"""Programming pulse-driven devices from the controller: nominal model, open loop or write-verify.

The controller never knows the true devices. It holds a *nominal* model (window, level count and
nonlinearities in the form of :mod:`aeqprop.devicemodel`, from a datasheet or a measured device file) and
turns a requested increment into signed pulse counts with it. Open loop: read the conductances once, fire the
counts. Write-verify: then read again and fire correcting pulses where the device missed the level the
nominal model predicted by more than ``tolerance`` pulses, for at most ``max_iterations`` rounds. Sub-pulse
requests are rounded stochastically by default (unbiased on average), and write-verify checks against the
*rounded* target, so it never undoes a rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import Field, model_validator

from .devicemodel import DeviceFile, DeviceFilePath, FloatArray, load_device_file, pulses_between, step_response
from .settings import ProtocolError, Section
from .system import ParamSpec, PhysicalSystem, PulsedSystem

Rounding = Literal["nearest", "stochastic"]

@dataclass(frozen=True)
class NominalDevice:
    """The controller's belief about a group of devices: window, level count and nonlinearity pair.

    Scalars describe one nominal device for all; arrays shaped like a conductance matrix give each device its
    own (a measured device file). ``stuck`` marks devices that pulses do not move: they get no pulses.
    """

    g_min: FloatArray
    g_max: FloatArray
    levels: FloatArray
    a_pot: FloatArray = math.inf
    a_dep: FloatArray = math.inf
    stuck: np.ndarray | None = None

    def __post_init__(self) -> None:
        lo, hi = np.asarray(self.g_min), np.asarray(self.g_max)
        if not (np.all(lo >= 0) and np.all(lo < hi)):
            raise ValueError(f"nominal window must satisfy 0 <= g_min < g_max, got [{self.g_min}, {self.g_max}]")
        if np.any(np.asarray(self.levels) < 1) or np.any(np.asarray(self.a_pot) <= 0) or np.any(
            np.asarray(self.a_dep) <= 0
        ):
            raise ValueError("nominal levels must be >= 1 and nonlinearities positive")

    @property
    def step(self) -> FloatArray:
        """Window / levels: one pulse of a linear device (S)."""
        return (self.g_max - self.g_min) / self.levels

    def _u(self, g: np.ndarray) -> np.ndarray:
        return np.clip((np.asarray(g, dtype=np.float64) - self.g_min) / (self.g_max - self.g_min), 0.0, 1.0)

    def fractional_counts(self, g: np.ndarray, target: np.ndarray) -> np.ndarray:
        """Pulses (not rounded) that take a device from ``g`` to ``target``; positive = SET."""
        x = pulses_between(self._u(g), self._u(target), self.levels, self.a_pot, self.a_dep)
        return x if self.stuck is None else np.where(self.stuck != 0, 0.0, x)

    def counts(self, g: np.ndarray, target: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
        """Integer pulse counts: nearest, or stochastic rounding when ``rng`` is given (unbiased)."""
        x = self.fractional_counts(g, target)
        x = np.floor(x + rng.random(x.shape)) if rng is not None else np.rint(x)
        return x.astype(np.int64)

    def after(self, g: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Where the nominal device would land after ``counts`` pulses from ``g``."""
        v = step_response(self._u(g), counts, self.levels, self.a_pot, self.a_dep)
        return self.g_min + (self.g_max - self.g_min) * v


@dataclass(frozen=True)
class ProgramReport:
    """What one programming call cost: pulses fired, ``read_params`` calls, verify rounds that fired pulses."""

    pulses: int = 0
    reads: int = 0
    verify_rounds: int = 0


class PulseProgrammer:
    """Program a ``pulse`` system: counts from the nominal model, optionally verified and corrected."""

    def __init__(
        self,
        device: NominalDevice,
        rng: np.random.Generator,
        rounding: Rounding = "stochastic",
        write_verify: bool = False,
        max_iterations: int = 3,
        tolerance: float = 1.0,
        per_group: Mapping[str, NominalDevice] | None = None,
    ) -> None:
        if max_iterations < 1 or tolerance <= 0:
            raise ValueError("write-verify needs max_iterations >= 1 and tolerance > 0 (in nominal pulses)")
        self.device = device
        self.per_group = dict(per_group or {})  # measured devices of a group, else ``device`` (the pooled fit)
        self.rounding = rounding
        self.write_verify = write_verify
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self._rng = rng

    def program(self, system: PulsedSystem, delta: Mapping[str, np.ndarray], reads: int = 1) -> ProgramReport:
        """Apply ``delta``: weights by pulses, every other parameter with ``program``.

        Every conductance measurement averages ``reads`` calls of ``read_params`` (the rule passes its N), so
        the verify loop does not chase read noise.
        """
        weights = [n for n in delta if system.spec.params[n].role == "weight"]
        others = {n: d for n, d in delta.items() if n not in weights}
        if others:
            system.program(others)
        if not weights:
            return ProgramReport()

        def measure() -> dict[str, np.ndarray]:
            total = {n: np.zeros_like(delta[n], dtype=np.float64) for n in weights}
            for _ in range(reads):
                values = system.read_params()
                for n in weights:
                    total[n] += values[n]
            return {n: v / reads for n, v in total.items()}

        measured = measure()
        rng = self._rng if self.rounding == "stochastic" else None
        counts, target = {}, {}
        for name in weights:
            dev = self.per_group.get(name, self.device)
            wanted = np.clip(measured[name] + delta[name], dev.g_min, dev.g_max)
            counts[name] = dev.counts(measured[name], wanted, rng)
            target[name] = dev.after(measured[name], counts[name])
        system.apply_pulses(counts)
        pulses = sum(int(np.abs(c).sum()) for c in counts.values())
        measurements, rounds = 1, 0
        if self.write_verify:
            for _ in range(self.max_iterations):
                measured = measure()
                measurements += 1
                fix = {}
                for name in weights:
                    dev = self.per_group.get(name, self.device)
                    missed = dev.fractional_counts(measured[name], target[name])
                    c = np.where(np.abs(missed) > self.tolerance, np.rint(missed), 0).astype(np.int64)
                    if c.any():
                        fix[name] = c
                if not fix:
                    break
                system.apply_pulses(fix)
                pulses += sum(int(np.abs(c).sum()) for c in fix.values())
                rounds += 1
        return ProgramReport(pulses=pulses, reads=measurements * reads, verify_rounds=rounds)


def measured_devices(
    file: DeviceFile, params: Mapping[str, ParamSpec]
) -> tuple[NominalDevice, dict[str, NominalDevice]]:
    """The pooled nominal device of a device file, and per-device ones for the groups it measured whose shape
    matches the system's (a group measured on another chip layout falls back to the pooled fit)."""
    p = file.pooled
    pooled = NominalDevice(p.g_min, p.g_max, p.levels, p.a_pot, p.a_dep)
    per_group = {}
    for name, group in file.devices.items():
        spec = params.get(name)
        if spec is None or spec.role != "weight" or tuple(spec.shape) != tuple(group.shape):
            continue
        g_max = group.array("g_max")
        per_group[name] = NominalDevice(
            np.minimum(group.array("g_min"), 0.5 * g_max), g_max, group.array("levels"), group.array("a_pot"),
            group.array("a_dep"), stuck=group.array("stuck"),
        )
    return pooled, per_group


__all__ = [
    "NominalDevice", "ProgramReport", "PulseProgrammer", "PulseProgrammingConfig", "Rounding", "measured_devices",
]


class PulseProgrammingConfig(Section):
    """``[algorithm.programming]``: program conductances by pulses counted from a nominal device model."""

    kind: Literal["pulses"] = "pulses"
    levels: int | None = Field(default=None, ge=1, le=2**20, description="Nominal pulses from g_min to g_max.")
    a_pot: float = Field(default=math.inf, gt=0, allow_inf_nan=True,
                         description="Nominal potentiation nonlinearity (inf = linear).")
    a_dep: float = Field(default=math.inf, gt=0, allow_inf_nan=True,
                         description="Nominal depression nonlinearity (inf = linear).")
    g_min: float | None = Field(default=None, ge=0, description="Nominal window low end (default: the system's "
                                "bounds).")
    g_max: float | None = Field(default=None, gt=0, description="Nominal window high end (default: the system's "
                                "bounds).")
    rounding: Literal["nearest", "stochastic"] = Field(default="stochastic", description="Rounding of pulse counts.")
    write_verify: bool = Field(default=False, description="Read back and correct after each programming.")
    verify_iterations: int = Field(default=3, ge=1, le=2**10, description="Most correction rounds per programming.")
    verify_tolerance: float = Field(default=1.0, gt=0, description="Correct only misses larger than this (pulses).")
    device_file: DeviceFilePath = Field(
        default=None, description="Measured device file (aeqprop characterise): per-device model where measured, "
        "else its pooled fit; replaces levels, a_pot, a_dep, g_min and g_max.",
    )

    @model_validator(mode="after")
    def _nominal_source(self) -> PulseProgrammingConfig:
        if self.device_file is None:
            if self.levels is None:
                raise ValueError("give levels (the nominal device) or device_file (a measured one)")
            return self
        hand = sorted({"levels", "a_pot", "a_dep", "g_min", "g_max"} & self.model_fields_set)
        if hand:
            raise ValueError(f"device_file replaces {', '.join(hand)}: give one or the other")
        return self

    def build(self, system: PhysicalSystem, rng: np.random.Generator) -> PulseProgrammer:
        if self.device_file is not None:
            pooled, per_group = measured_devices(load_device_file(self.device_file), system.spec.params)
            return PulseProgrammer(pooled, rng, self.rounding, self.write_verify, self.verify_iterations,
                                   self.verify_tolerance, per_group)
        assert self.levels is not None
        bounds = [p.bounds for p in system.spec.params.values() if p.role == "weight"]
        lo = self.g_min if self.g_min is not None else min(b[0] or 0.0 for b in bounds)
        hi = self.g_max if self.g_max is not None else max((b[1] for b in bounds if b[1] is not None), default=None)
        if hi is None:
            raise ProtocolError("algorithm.programming: the system states no conductance window; set g_max")
        device = NominalDevice(lo, hi, self.levels, self.a_pot, self.a_dep)
        return PulseProgrammer(device, rng, self.rounding, self.write_verify, self.verify_iterations,
                               self.verify_tolerance)
