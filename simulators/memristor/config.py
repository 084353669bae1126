"""Protocol-file settings of the memristor crossbar (``[system] kind = "crossbar"``, ``[system.device]``)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.resistive.network import Topology, init_params
from pydantic import ConfigDict, Field, field_validator, model_validator

from aeqprop.settings import Section, SystemSettings, Units

from .devices import DeviceModel


class DeviceConfig(Section):
    """The nominal device and its imperfections; all zeros/inf is the ideal (linear, noiseless) device."""

    model_config = ConfigDict(extra="forbid")

    g_min: float = Field(default=0.0, ge=0, description="Low end of the nominal conductance window (S).")
    g_max: float = Field(default=0.4, gt=0, description="High end of the nominal conductance window (S).")
    levels: int = Field(default=64, ge=1, description="Pulses from g_min to g_max (distinguishable levels).")
    a_pot: float = Field(default=math.inf, gt=0, allow_inf_nan=True, description="Potentiation nonlinearity A (inf = linear).")
    a_dep: float = Field(default=math.inf, gt=0, allow_inf_nan=True, description="Depression nonlinearity A (inf = linear).")
    c2c: float = Field(default=0.0, ge=0, description="Cycle-to-cycle noise per pulse, fraction of the window.")
    d2d: float = Field(default=0.0, ge=0, description="Device-to-device relative spread of every parameter.")
    read_noise: float = Field(default=0.0, ge=0, description="Relative noise of one conductance read.")
    stuck_min: float = Field(default=0.0, ge=0, le=1, description="Fraction of devices stuck at g_min.")
    stuck_max: float = Field(default=0.0, ge=0, le=1, description="Fraction of devices stuck at g_max.")
    drift: float = Field(default=0.0, ge=0, lt=1, description="Fraction of g - g_min lost per programming event.")

    @model_validator(mode="after")
    def _window(self) -> DeviceConfig:
        if self.g_max <= self.g_min:
            raise ValueError(f"g_max ({self.g_max}) must exceed g_min ({self.g_min})")
        if self.stuck_min + self.stuck_max > 1:
            raise ValueError("stuck_min + stuck_max must not exceed 1")
        return self

    def model(self) -> DeviceModel:
        return DeviceModel(**self.model_dump())


class CrossbarConfig(SystemSettings):
    """A layered resistive network built from memristive crossbars, read through noisy instruments."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a resistive network of simulated memristive crossbars: pulses, noise, faults"

    kind: Literal["crossbar"] = "crossbar"
    inputs: Units = Field(description="Input features; each drives two sources, +gain*x and -gain*x.")
    hidden: list[Units] = Field(default=[32], description="Hidden layer sizes, each even (half V>=0, half V<=0).")
    outputs: Units = Field(description="Linear output nodes (one per class).")
    input_gain: float = Field(default=4.0, gt=0, description="Volts per unit of input.")
    init_gain: float = Field(default=1.0, gt=0, description="Conductance init scale: U(-s, s)/sqrt(fan_in), clipped at 0.")
    bias_init: float = Field(default=0.0, ge=0, description="Bias currents drawn from U(-bias_init, bias_init) A.")
    read_noise_v: float = Field(default=0.0, ge=0, description="Noise of one node-voltage read (V, standard deviation).")
    device: DeviceConfig = Field(default_factory=DeviceConfig, description="The memristive devices.")
    tol_v: float = Field(default=1e-5, gt=0, description="Settled when no node moves more than this many volts in a sweep.")
    max_sweeps: int = Field(default=1000, gt=0, description="Sweeps before NotSettled is raised.")
    dtype: Literal["float64", "float32"] = "float64"

    @field_validator("hidden")
    @classmethod
    def _even(cls, sizes: list[int]) -> list[int]:
        bad = [n for n in sizes if n <= 0 or n % 2]
        if bad:
            raise ValueError(f"hidden sizes must be positive and even, got {bad}")
        return sizes

    def capabilities(self) -> frozenset[str]:
        from .crossbar import CrossbarNetwork

        return CrossbarNetwork.CAPABILITIES

    def layer_count(self) -> int:
        """Weight layers: one per hidden layer, plus the output layer."""
        return len(self.hidden) + 1

    def drives_hardware(self) -> bool:
        return False  # a simulation: every conformance check may run

    def feature_counts(self) -> tuple[int, int]:
        """(inputs, outputs) the data must provide."""
        return self.inputs, self.outputs

    def build(self, rng: np.random.Generator):
        """Draw conductances, fabricate the devices (spread, faults) and keep ``rng`` for every later draw."""
        from .crossbar import CrossbarNetwork

        topology = Topology((2 * self.inputs, *self.hidden, self.outputs), self.input_gain)
        params = init_params(topology, rng, self.init_gain, self.bias_init, np.dtype(self.dtype))
        return CrossbarNetwork(
            topology, params, self.device.model(), rng, read_noise_v=self.read_noise_v,
            tol_v=self.tol_v, max_sweeps=self.max_sweeps, dtype=self.dtype,
        )
