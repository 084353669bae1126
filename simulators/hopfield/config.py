"""Protocol-file settings of the floating-parameter Hopfield network (``[system] kind = "hopfield-floating"``)."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.settings import LayeredSimulation
from pydantic import ConfigDict, Field, field_validator

from aeqprop.settings import Units

from .network import Topology, init_params, param_names


class FloatingHopfieldConfig(LayeredSimulation):
    """A layered hard-sigmoid Hopfield network whose weights and biases float under knobs u."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a hard-sigmoid Hopfield network whose weights float under control knobs (for aeqprop)"

    kind: Literal["hopfield-floating"] = "hopfield-floating"
    inputs: Units = Field(description="Input units (clamped to the features).")
    hidden: list[Units] = Field(default=[64], description="Hidden layer sizes.")
    outputs: Units = Field(description="Output units (one per class).")
    init_gain: float = Field(default=1.0, gt=0, description="Weights start as init_gain * U(-1, 1)/sqrt(fan_in).")
    bias_init: float = Field(default=0.0, ge=0, description="Biases start as U(-bias_init, bias_init).")
    coupling_eps: float = Field(
        default=0.01, gt=0,
        description="Coupling eps of every group until a controller sets its own (aeqprop sets algorithm.eps).",
    )
    tol: float = Field(default=1e-7, gt=0, description="Units settled when none moves more than this in a sweep.")
    tol_param: float = Field(
        default=1e-9, gt=0, description="Parameters settled when none moves more than this in a round."
    )
    max_sweeps: int = Field(
        default=10_000, gt=0,
        description="Sweeps per relaxation (each followed by the parameters' update) before NotSettled.",
    )
    dtype: Literal["float64", "float32"] = "float64"
    read_noise: float = Field(
        default=0.0, ge=0, description="σ of one parameter read-back (parameter units); 0 = exact."
    )
    noise_seed: int = Field(default=0, description="Seed of the read-back noise.")

    @field_validator("hidden")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        bad = [n for n in sizes if n <= 0]
        if bad:
            raise ValueError(f"hidden sizes must be positive, got {bad}")
        return sizes

    def capabilities(self) -> frozenset[str]:
        from .system import FloatingHopfield

        return FloatingHopfield.CAPABILITIES

    def settable_coupling(self) -> bool:
        """The knobs' coupling eps is set by the controller (``set_coupling``)."""
        return True

    def build(self, rng: np.random.Generator):
        """Draw the initial parameters from ``rng`` and return the system (knobs start at the parameters)."""
        from .system import FloatingHopfield

        topology = Topology((self.inputs, *self.hidden, self.outputs))
        params = init_params(topology, rng, self.init_gain, self.bias_init, np.dtype(self.dtype))
        eps = {name: self.coupling_eps for name in param_names(topology.depth)}
        net = FloatingHopfield(
            topology, params, eps, tol=self.tol, tol_param=self.tol_param, max_sweeps=self.max_sweeps,
            dtype=self.dtype,
        )
        net.set_read_noise(self.read_noise, self.noise_seed)
        return net
