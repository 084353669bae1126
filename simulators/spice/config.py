"""Protocol-file settings of the ngspice-solved network (``[system] kind = "spice"``)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.resistive.network import Topology, init_params
from aeqprop.simulators.settings import EvenHiddenSimulation
from pydantic import ConfigDict, Field

from aeqprop.settings import Timeout, Units

from .diodes import BehaviouralDiode, DiodeModel, JunctionDiode
from .netlist import SolverOptions


class SpiceConfig(EvenHiddenSimulation):
    """The layered resistive network of ``kind = "resistive"``, solved by ngspice with a chosen diode model.

    The fields shared with the resistive network mean the same and draw the same initial parameters from the
    same seed, so one protocol can be run on both and the results compared.
    """

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "the resistive network solved by ngspice as a real circuit"

    kind: Literal["spice"] = "spice"
    inputs: Units = Field(description="Input features; each drives two sources, +gain*x and -gain*x.")
    hidden: list[Units] = Field(default=[32], description="Hidden layer sizes, each even (half V>=0, half V<=0).")
    outputs: Units = Field(description="Linear output nodes (one per class).")
    input_gain: float = Field(default=4.0, gt=0, description="Volts per unit of input.")
    init_gain: float = Field(
        default=1.0, gt=0, description="Conductance init scale: U(-s, s)/sqrt(fan_in), clipped at 0."
    )
    bias_init: float = Field(default=0.0, ge=0, description="Bias currents drawn from U(-bias_init, bias_init) A.")
    g_min: float = Field(default=0.0, ge=0, description="Lower end of the conductance window (S).")
    g_max: float | None = Field(
        default=None, gt=0, description="Upper end of the conductance window (S); none = unbounded."
    )
    diode: Literal["behavioural", "junction"] = Field(
        default="behavioural",
        description="behavioural: I = g_on*max(V, 0), near-ideal; junction: SPICE level-1 diode (default 1N4148).",
    )
    g_on: float = Field(default=1e12, gt=0, description="behavioural diode: on-conductance (S).")
    diode_is: float = Field(default=2.52e-9, gt=0, description="junction diode: saturation current IS (A).")
    diode_n: float = Field(
        default=1.752, ge=1e-3,
        description="junction diode: emission coefficient N (>= 1e-3: smaller values make ngspice's warm-started "
        "sweeps return wrong operating points; use diode = \"behavioural\" for a near-ideal diode).",
    )
    diode_rs: float = Field(default=0.568, ge=0, description="junction diode: series resistance RS (ohm).")
    reltol: float = Field(default=1e-6, gt=0, lt=1, description="ngspice relative tolerance (option reltol).")
    vntol: float = Field(default=1e-9, gt=0, description="ngspice absolute voltage tolerance (V).")
    abstol: float = Field(default=1e-15, gt=0, description="ngspice absolute current tolerance (A).")
    max_iterations: int = Field(default=200, gt=0, description="Newton iterations per operating point (itl1, itl2).")
    ngspice: str = Field(default="ngspice", description="The ngspice executable (a name on PATH or a path).")
    timeout_s: Timeout = Field(default=600.0, description="Wall-clock limit of one ngspice run (s).")
    offers: list[Literal["local", "program"]] | None = Field(
        default=None, description="Restrict the capabilities offered (default all)."
    )

    def capabilities(self) -> frozenset[str]:
        from .system import SpiceNetwork

        return SpiceNetwork.CAPABILITIES if self.offers is None else frozenset(self.offers)

    def diode_model(self) -> DiodeModel:
        if self.diode == "behavioural":
            return BehaviouralDiode(self.g_on)
        return JunctionDiode(self.diode_is, self.diode_n, self.diode_rs)

    def solver_options(self) -> SolverOptions:
        return SolverOptions(self.reltol, self.vntol, self.abstol, self.max_iterations, self.max_iterations)

    def topology(self) -> Topology:
        return Topology((2 * self.inputs, *self.hidden, self.outputs), self.input_gain)

    def build(self, rng: np.random.Generator):
        """Draw the initial conductances from ``rng`` exactly as the resistive network does; return the system.

        Building does not need ngspice; the first relaxation does, and says how to install it when missing.
        """
        from .system import SpiceNetwork

        topology = self.topology()
        params = init_params(topology, rng, self.init_gain, self.bias_init, np.dtype(np.float64))
        return SpiceNetwork(
            topology, params, diode=self.diode_model(), options=self.solver_options(), g_min=self.g_min,
            g_max=self.g_max, executable=self.ngspice, timeout_s=self.timeout_s, capabilities=self.capabilities(),
        )


__all__ = ["SpiceConfig"]
