"""Protocol-file settings of the memristor crossbar (``[system] kind = "crossbar"``, ``[system.device]``)."""

from __future__ import annotations

import math
from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.resistive.network import Topology, init_params
from aeqprop.simulators.settings import EvenHiddenSimulation
from pydantic import ConfigDict, Field, model_validator

from aeqprop.devicemodel import DeviceFilePath, load_device_file
from aeqprop.settings import Section, Units

from .devices import DeviceModel


class DeviceConfig(Section):
    """The nominal device and its imperfections; all zeros/inf is the ideal (linear, noiseless) device."""

    model_config = ConfigDict(extra="forbid")

    g_min: float = Field(default=0.0, ge=0, description="Low end of the nominal conductance window (S).")
    g_max: float = Field(default=0.4, gt=0, description="High end of the nominal conductance window (S).")
    levels: int = Field(default=64, ge=1, description="Pulses from g_min to g_max (distinguishable levels).")
    a_pot: float = Field(
        default=math.inf, gt=0, allow_inf_nan=True, description="Potentiation nonlinearity A (inf = linear)."
    )
    a_dep: float = Field(
        default=math.inf, gt=0, allow_inf_nan=True, description="Depression nonlinearity A (inf = linear)."
    )
    c2c: float = Field(default=0.0, ge=0, description="Cycle-to-cycle noise per pulse, fraction of the window.")
    d2d: float = Field(default=0.0, ge=0, description="Device-to-device relative spread of every parameter.")
    read_noise: float = Field(default=0.0, ge=0, description="Relative noise of one conductance read.")
    stuck_min: float = Field(default=0.0, ge=0, le=1, description="Fraction of devices stuck at g_min.")
    stuck_max: float = Field(default=0.0, ge=0, le=1, description="Fraction of devices stuck at g_max.")
    drift: float = Field(default=0.0, ge=0, lt=1, description="Fraction of g - g_min lost per programming event.")
    pulse_v: float = Field(default=1.0, gt=0, description="Programming pulse amplitude (V), for the energy per pulse.")
    pulse_width_s: float = Field(default=1e-7, gt=0, description="Programming pulse width (s).")

    @model_validator(mode="after")
    def _window(self) -> DeviceConfig:
        if self.g_max <= self.g_min:
            raise ValueError(f"g_max ({self.g_max}) must exceed g_min ({self.g_min})")
        if self.stuck_min + self.stuck_max > 1:
            raise ValueError("stuck_min + stuck_max must not exceed 1")
        return self

    def model(self) -> DeviceModel:
        return DeviceModel(**self.model_dump())


class CrossbarConfig(EvenHiddenSimulation):
    """A layered resistive network built from memristive crossbars, read through noisy instruments."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a resistive network of simulated memristive crossbars: pulses, noise, faults"

    kind: Literal["crossbar"] = "crossbar"
    inputs: Units = Field(description="Input features; each drives two sources, +gain*x and -gain*x.")
    hidden: list[Units] = Field(default=[32], description="Hidden layer sizes, each even (half V>=0, half V<=0).")
    outputs: Units = Field(description="Linear output nodes (one per class).")
    input_gain: float = Field(default=4.0, gt=0, description="Volts per unit of input.")
    init_gain: float = Field(
        default=1.0, gt=0, description="Conductance init scale: U(-s, s)/sqrt(fan_in), clipped at 0."
    )
    bias_init: float = Field(default=0.0, ge=0, description="Bias currents drawn from U(-bias_init, bias_init) A.")
    read_noise_v: float = Field(
        default=0.0, ge=0, description="Noise of one node-voltage read (V, standard deviation)."
    )
    device: DeviceConfig = Field(default_factory=DeviceConfig, description="The memristive devices.")
    device_file: DeviceFilePath = Field(
        default=None,
        description="A measured device file (aeqprop characterise): the crossbar becomes that chip's twin, every "
        "device as measured (stuck ones included); replaces [system.device].",
    )
    tol_v: float = Field(
        default=1e-5, gt=0, description="Settled when no node moves more than this many volts in a sweep."
    )
    tau_s: float = Field(default=1e-6, gt=0, description="RC time constant of the nodes (s), for time and energy.")
    settle_taus: float = Field(default=5.0, gt=0, description="Time constants one relaxation takes to settle.")
    max_sweeps: int = Field(default=1000, gt=0, description="Sweeps before NotSettled is raised.")
    dtype: Literal["float64", "float32"] = "float64"

    @model_validator(mode="after")
    def _twin(self) -> CrossbarConfig:
        if self.device_file is None:
            return self
        if "device" in self.model_fields_set:
            raise ValueError("give either [system.device] or system.device_file, not both")
        file = load_device_file(self.device_file)
        sizes = (2 * self.inputs, *self.hidden, self.outputs)
        for k in range(1, len(sizes)):
            group = file.devices.get(f"g{k}")
            if group is not None and tuple(group.shape) != (sizes[k - 1], sizes[k]):
                raise ValueError(f"{self.device_file}: g{k} was measured with shape {tuple(group.shape)} but this "
                                 f"crossbar's g{k} has shape {(sizes[k - 1], sizes[k])}")
        return self

    def twin(self) -> tuple[DeviceModel, dict[str, dict[str, np.ndarray]]]:
        """The pooled device model and the per-device fits of :attr:`device_file`."""
        assert self.device_file is not None
        file = load_device_file(self.device_file)
        p = file.pooled
        model = DeviceModel(g_min=p.g_min, g_max=p.g_max, levels=max(1, round(p.levels)), a_pot=p.a_pot,
                            a_dep=p.a_dep, c2c=p.c2c, d2d=p.d2d, read_noise=p.read_noise,
                            stuck_min=p.stuck_min, stuck_max=p.stuck_max)
        measured = {name: {k: g.array(k) for k in g.FIELDS} for name, g in file.devices.items()}
        return model, measured

    def capabilities(self) -> frozenset[str]:
        from .crossbar import CrossbarNetwork

        return CrossbarNetwork.CAPABILITIES

    def oracle(self, system):
        """True-gradient function ``(x, y) -> {name: dL/dθ}`` at the devices' true conductances (small networks)."""
        from aeqprop.simulators.resistive.oracle import gradient_fd

        def truth(x: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
            snap = system.snapshot()
            params = {name: np.array(snap[f"param.{name}"], dtype=np.float64) for name in system.spec.params}
            return gradient_fd(system, x, y, params=params)

        return truth

    def build(self, rng: np.random.Generator):
        """Draw conductances, fabricate the devices (spread, faults) and keep ``rng`` for every later draw."""
        from .crossbar import CrossbarNetwork

        topology = Topology((2 * self.inputs, *self.hidden, self.outputs), self.input_gain)
        params = init_params(topology, rng, self.init_gain, self.bias_init, np.dtype(self.dtype))
        model, measured = self.twin() if self.device_file is not None else (self.device.model(), None)
        return CrossbarNetwork(
            topology, params, model, rng, read_noise_v=self.read_noise_v,
            tol_v=self.tol_v, max_sweeps=self.max_sweeps, dtype=self.dtype, measured=measured,
            settle_s=self.tau_s * self.settle_taus,
        )
