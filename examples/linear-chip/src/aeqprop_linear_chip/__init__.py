"""Example aeqprop plug-in: a one-layer linear chip, its settings class and nothing else.

The chip's output voltages settle where the energy E(s) = ½‖s‖² − sᵀ(Wᵀx + b), plus the nudge's
(β/2)‖s − y‖², is lowest: s = (Wᵀx + b + βy) / (1 + β). Its conductances W (one per input/output pair,
in a window ±g_max) and bias currents b are the parameters; it reports dE/dW = −x sᵀ and dE/db = −s,
averaged over the batch, as a chip that senses the voltage across each device would. It offers the
capabilities "local" and "program", so the built-in rules ep (and cep, without "stepwise", not) train it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
from pydantic import Field

from aeqprop import CapabilityError, NotSettled, ParamSpec, RelaxReport, SystemSettings, SystemSpec


class LinearChip:
    """The system: everything a learning rule may ask of it, in the shapes the contract fixes (batch first)."""

    def __init__(self, weights: np.ndarray, bias: np.ndarray, g_max: float, read_noise: float,
                 rng: np.random.Generator) -> None:
        n_in, n_out = weights.shape
        self.spec = SystemSpec(
            n_inputs=n_in, n_outputs=n_out,
            params={
                "w": ParamSpec((n_in, n_out), (-g_max, g_max), "S", layer=1, role="weight"),
                "b": ParamSpec((n_out,), (None, None), "A", layer=1, role="bias"),  # feeds layer 1: its layer
            },
            capabilities=frozenset({"local", "program"}),
            description=f"linear chip {n_in}-{n_out}",
        )
        self._w, self._b = weights.astype(np.float64), bias.astype(np.float64)
        self._g_max, self._noise, self._rng = g_max, read_noise, rng
        self._x: np.ndarray | None = None
        self._target: np.ndarray | None = None
        self._beta = 0.0
        self._s: np.ndarray | None = None

    # --- every system --------------------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.spec.n_inputs:
            raise ValueError(f"clamp: expected shape (batch, {self.spec.n_inputs}), got {x.shape}")
        self._x, self._s = x.copy(), None

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        if isinstance(beta, complex):
            raise CapabilityError("linear chip: a complex nudge needs capability 'complex'")
        if target is not None:
            target = np.asarray(target, dtype=np.float64)
            if self._x is None or target.shape != (self._x.shape[0], self.spec.n_outputs):
                raise ValueError(f"nudge: target shape {target.shape} does not match the clamped batch")
            self._target = target.copy()
        elif beta != 0 and self._target is None:
            raise ValueError("nudge: a nonzero beta needs a target")
        self._beta = float(beta)  # nudge(0) frees the outputs and keeps the target for the next nudge

    def relax(self) -> RelaxReport:
        if self._x is None:
            raise ValueError("relax: clamp an input first")
        if 1.0 + self._beta <= 0:
            raise NotSettled(f"linear chip: nudge beta={self._beta} leaves no stable equilibrium (needs beta > -1)")
        drive = self._x @ self._w + self._b
        if self._beta != 0:
            drive = drive + self._beta * self._target
        self._s = drive / (1.0 + self._beta)
        return RelaxReport(sweeps=1, residual=0.0)  # one "sweep": the chip settles in one step

    def _read(self, value: np.ndarray, reads: int) -> np.ndarray:
        if self._noise == 0:
            return value.copy()
        noise = self._rng.normal(0.0, self._noise, (reads, *value.shape)).mean(axis=0)
        return value + noise

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        if self._s is None:
            raise ValueError("read_outputs: relax first")
        return self._read(self._s, reads)

    def snapshot(self) -> dict[str, np.ndarray]:
        return {"w": self._w.copy(), "b": self._b.copy()}  # arrays only; the state is recomputed by relax()

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        self._w, self._b = np.array(snapshot["w"], dtype=np.float64), np.array(snapshot["b"], dtype=np.float64)
        self._s = None

    def close(self) -> None:
        self._s = None  # nothing to release; calling it twice is harmless

    # --- "local" -------------------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        s = self.read_outputs(reads)
        batch = s.shape[0]
        return {"w": -(self._x.T @ s) / batch, "b": -s.mean(axis=0)}

    # --- "program" -----------------------------------------------------------------------------------------
    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        for name, value in delta.items():  # typed errors: KeyError for a name, ValueError for a shape
            if name not in self.spec.params:
                raise KeyError(f"program: no parameter {name!r}; the chip has {sorted(self.spec.params)}")
            if np.shape(value) != self.spec.params[name].shape:
                raise ValueError(f"program: {name} needs shape {self.spec.params[name].shape}, got {np.shape(value)}")
        if "w" in delta:
            self._w = np.clip(self._w + delta["w"], -self._g_max, self._g_max)  # the window clips
        if "b" in delta:
            self._b = self._b + delta["b"]
        self._s = None

    def read_params(self) -> dict[str, np.ndarray]:
        return {"w": self._w.copy(), "b": self._b.copy()}


class LinearChipSettings(SystemSettings):
    """``[system] kind = "linear-chip"``: the fields a protocol file may set, and how to build the chip."""

    description: ClassVar[str] = "a one-layer linear chip (example plug-in): outputs settle to W x + b"

    kind: Literal["linear-chip"] = "linear-chip"
    inputs: int = Field(gt=0, description="Input lines (data features).")
    outputs: int = Field(gt=0, description="Output nodes (classes).")
    init_scale: float = Field(default=0.1, gt=0, description="Initial conductances U(-s, s).")
    g_max: float = Field(default=1.0, gt=0, description="Conductance window ±g_max (S).")
    read_noise: float = Field(default=0.0, ge=0, description="Noise of one output read (V, standard deviation).")

    # must: build, capabilities, feature_counts
    def build(self, rng: np.random.Generator) -> LinearChip:
        weights = rng.uniform(-self.init_scale, self.init_scale, (self.inputs, self.outputs))
        return LinearChip(weights, np.zeros(self.outputs), self.g_max, self.read_noise, rng)

    def capabilities(self) -> frozenset[str]:
        return frozenset({"local", "program"})

    def feature_counts(self) -> tuple[int, int]:
        return self.inputs, self.outputs

    # may: each has a default on SystemSettings
    def layer_count(self) -> int:
        return 1  # per-layer rate lists (optimizer.lr = [..]) must have one entry

    def drives_hardware(self) -> bool:
        return False  # a simulation: `aeqprop check` may reprogram it

    def oracle(self, system: LinearChip):  # the true gradient, for `aeqprop bench fidelity`
        def gradient(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
            params = system.read_params()
            error = x @ params["w"] + params["b"] - y
            return {"w": x.T @ error / x.shape[0], "b": error.mean(axis=0)}

        return gradient


__all__ = ["LinearChip", "LinearChipSettings"]
