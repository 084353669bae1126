"""Protocol-file settings of the resistive network (``[system] kind = "resistive"``)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.settings import EvenHiddenSimulation
from pydantic import ConfigDict, Field

from aeqprop.settings import Units

from .network import Topology, init_params


class ResistiveConfig(EvenHiddenSimulation):
    """A layered nonlinear resistive network (deep resistive network, Scellier 2024)."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = (
        "a layered nonlinear resistive network with diodes (deep resistive network), solved in numpy"
    )

    kind: Literal["resistive"] = "resistive"
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
    tol_v: float = Field(
        default=1e-5, gt=0, description="Settled when no node moves more than this many volts in a sweep."
    )
    max_sweeps: int = Field(default=1000, gt=0, description="Sweeps before NotSettled is raised.")
    dtype: Literal["float64", "float32"] = "float64"
    offers: list[Literal["local", "program", "stepwise", "contrast", "phases"]] | None = Field(
        default=None,
        description="Restrict the capabilities offered (default all), e.g. to rehearse a rig that cannot "
        "measure per-device voltage drops.",
    )

    def capabilities(self) -> frozenset[str]:
        from .system import ResistiveNetwork

        return ResistiveNetwork.CAPABILITIES if self.offers is None else frozenset(self.offers)

    def oracle(self, system):
        """True-gradient function ``(x, y) -> {name: dL/dθ}`` by finite differences (small networks only)."""
        from .oracle import gradient_fd

        return lambda x, y: gradient_fd(system, x, y)

    def build(self, rng: np.random.Generator):
        """Draw the initial conductances from ``rng`` and return the system."""
        from .system import ResistiveNetwork

        topology = Topology((2 * self.inputs, *self.hidden, self.outputs), self.input_gain)
        dtype = np.dtype(self.dtype)
        params = init_params(topology, rng, self.init_gain, self.bias_init, dtype)
        return ResistiveNetwork(
            topology, params, g_min=self.g_min, g_max=self.g_max,
            tol_v=self.tol_v, max_sweeps=self.max_sweeps, dtype=self.dtype, capabilities=self.capabilities(),
        )
