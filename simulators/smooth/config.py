"""Protocol-file settings of the smooth layered network (``[system] kind = "smooth"``)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.settings import LayeredSimulation
from pydantic import ConfigDict, Field

from aeqprop.settings import Units


class SmoothConfig(LayeredSimulation):
    """A tied layered tanh network (a smooth Hopfield-like energy system); accepts complex nudges."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a tied layered tanh network; relaxes in complex arithmetic (holomorphic EP)"

    kind: Literal["smooth"] = "smooth"
    inputs: Units = Field(description="Input units (clamped).")
    hidden: list[Units] = Field(default=[32], description="Hidden layer sizes (tanh units).")
    outputs: Units = Field(description="Linear output units (one per class).")
    init_gain: float = Field(default=1.0, gt=0, description="Coupling init scale: U(-s, s)/sqrt(fan_in).")
    tol: float = Field(default=1e-10, gt=0, description="Settled when no unit moves more than this in a sweep.")
    max_sweeps: int = Field(default=10_000, gt=0, description="Sweeps before NotSettled is raised.")
    damping: float = Field(default=1.0, gt=0, le=1, description="Fixed-point damping (1 = plain Gauss-Seidel).")
    read_noise: float = Field(default=0.0, ge=0, description="Std of Gaussian noise on every local reading.")
    offers: list[Literal["local", "program", "complex"]] | None = Field(
        default=None, description="Restrict the capabilities offered (default all)."
    )

    def capabilities(self) -> frozenset[str]:
        from .system import SmoothNetwork

        return SmoothNetwork.CAPABILITIES if self.offers is None else frozenset(self.offers)

    def build(self, rng: np.random.Generator):
        from .network import init_params
        from .system import SmoothNetwork

        sizes = (self.inputs, *self.hidden, self.outputs)
        params = init_params(sizes, rng, self.init_gain, tied=True)
        return SmoothNetwork(sizes, params, tied=True, tol=self.tol, max_sweeps=self.max_sweeps,
                             damping=self.damping, read_noise=self.read_noise, rng=rng,
                             capabilities=self.capabilities())

    def oracle(self, system):
        """True-gradient function ``(x, y) -> {name: dL/dθ}`` of a system this model built."""
        from .oracle import oracle

        return oracle(system)


__all__ = ["SmoothConfig"]
