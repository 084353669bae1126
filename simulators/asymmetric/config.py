"""Protocol-file settings of the untied (asymmetric) network (``[system] kind = "asymmetric"``)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.settings import LayeredSimulation
from pydantic import ConfigDict, Field

from aeqprop.settings import Units


class AsymmetricConfig(LayeredSimulation):
    """A layered tanh network whose backward couplings differ from the forward ones by ``asymmetry``."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a layered tanh network with untied forward and backward couplings"

    kind: Literal["asymmetric"] = "asymmetric"
    inputs: Units = Field(description="Input units (clamped).")
    hidden: list[Units] = Field(default=[32], description="Hidden layer sizes (tanh units).")
    outputs: Units = Field(description="Linear output units (one per class).")
    init_gain: float = Field(default=1.0, gt=0, description="Coupling init scale: U(-s, s)/sqrt(fan_in).")
    asymmetry: float = Field(
        default=0.0, ge=0, description="Backward couplings start as w.T + asymmetry * (noise of the couplings' scale)."
    )
    tol: float = Field(default=1e-10, gt=0, description="Settled when no unit moves more than this in a sweep.")
    max_sweeps: int = Field(default=10_000, gt=0, description="Sweeps before NotSettled is raised.")
    damping: float = Field(default=1.0, gt=0, le=1, description="Fixed-point damping (1 = plain Gauss-Seidel).")
    read_noise: float = Field(default=0.0, ge=0, description="Std of Gaussian noise on every local reading.")
    probe_time: float = Field(default=0.1, gt=0, description="How long a kicked state responds before it is read.")
    offers: list[Literal["local", "program", "perturb"]] | None = Field(
        default=None, description="Restrict the capabilities offered (default all)."
    )

    def capabilities(self) -> frozenset[str]:
        from .system import AsymmetricNetwork

        return AsymmetricNetwork.CAPABILITIES if self.offers is None else frozenset(self.offers)

    def build(self, rng: np.random.Generator):
        from aeqprop.simulators.smooth.network import init_params

        from .system import AsymmetricNetwork

        sizes = (self.inputs, *self.hidden, self.outputs)
        params = init_params(sizes, rng, self.init_gain, tied=False, asymmetry=self.asymmetry)
        return AsymmetricNetwork(sizes, params, probe_time=self.probe_time, tol=self.tol,
                                 max_sweeps=self.max_sweeps, damping=self.damping, read_noise=self.read_noise,
                                 rng=rng, capabilities=self.capabilities())

    def oracle(self, system):
        """True-gradient function ``(x, y) -> {name: dL/dθ}`` (implicit differentiation with J⁻ᵀ)."""
        from aeqprop.simulators.smooth.oracle import oracle

        return oracle(system)


__all__ = ["AsymmetricConfig"]
