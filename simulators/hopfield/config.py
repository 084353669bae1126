"""Protocol-file settings of the layered Hopfield networks: ``[system] kind = "hopfield"`` (fixed, programmed
parameters, for classic EP) and ``kind = "hopfield-floating"`` (parameters floating under knobs, for Aeqprop).

Both draw the same initial parameters from the same generator, so a protocol of each kind with the same sizes
and seed starts from the same network.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.settings import LayeredSimulation
from pydantic import ConfigDict, Field, field_validator

from aeqprop.settings import Units

from .network import Topology, init_params, param_names


class HopfieldSimulation(LayeredSimulation):
    """What both Hopfield kinds share: sizes, initial parameters, the unit solver's tolerance, dtype."""

    inputs: Units = Field(description="Input units (clamped to the features).")
    hidden: list[Units] = Field(default=[64], description="Hidden layer sizes.")
    outputs: Units = Field(description="Output units (one per class).")
    init_gain: float = Field(default=1.0, gt=0, description="Weights start as init_gain * U(-1, 1)/sqrt(fan_in).")
    bias_init: float = Field(default=0.0, ge=0, description="Biases start as U(-bias_init, bias_init).")
    tol: float = Field(default=1e-7, gt=0, description="Units settled when none moves more than this in a sweep.")
    dtype: Literal["float64", "float32"] = "float64"

    @field_validator("hidden")
    @classmethod
    def _positive(cls, sizes: list[int]) -> list[int]:
        bad = [n for n in sizes if n <= 0]
        if bad:
            raise ValueError(f"hidden sizes must be positive, got {bad}")
        return sizes

    def _initial(self, rng: np.random.Generator) -> tuple[Topology, dict[str, np.ndarray]]:
        """The topology and the initial parameters drawn from ``rng``."""
        topology = Topology((self.inputs, *self.hidden, self.outputs))
        return topology, init_params(topology, rng, self.init_gain, self.bias_init, np.dtype(self.dtype))


class HopfieldConfig(HopfieldSimulation):
    """A layered hard-sigmoid Hopfield network with programmed weights and biases (classic EP's network)."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a hard-sigmoid Hopfield network with programmed weights (for classic EP)"

    kind: Literal["hopfield"] = "hopfield"
    max_sweeps: int = Field(default=10_000, gt=0, description="Sweeps per relaxation before NotSettled.")
    offers: list[Literal["local", "program"]] | None = Field(
        default=None, description="Restrict the capabilities offered (default all: local, program)."
    )

    def capabilities(self) -> frozenset[str]:
        from .fixed import HopfieldNetwork

        return HopfieldNetwork.CAPABILITIES if self.offers is None else frozenset(self.offers)

    def oracle(self, system):
        """True-gradient function ``(x, y) -> {name: dL/dθ}`` by finite differences (small networks only)."""
        from .oracle import gradient_fd

        return lambda x, y: gradient_fd(system, x, y)

    def build(self, rng: np.random.Generator):
        """Draw the initial parameters from ``rng`` and return the system."""
        from .fixed import HopfieldNetwork

        topology, params = self._initial(rng)
        return HopfieldNetwork(topology, params, tol=self.tol, max_sweeps=self.max_sweeps, dtype=self.dtype,
                               capabilities=self.capabilities())


class FloatingHopfieldConfig(HopfieldSimulation):
    """A layered hard-sigmoid Hopfield network whose weights and biases float under knobs u."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a hard-sigmoid Hopfield network whose weights float under control knobs (for aeqprop)"

    kind: Literal["hopfield-floating"] = "hopfield-floating"
    coupling_eps: float = Field(
        default=0.01, gt=0,
        description="Coupling eps of every group until a controller sets its own (aeqprop sets algorithm.eps).",
    )
    tol_param: float = Field(
        default=1e-9, gt=0, description="Parameters settled when none moves more than this in a round."
    )
    max_sweeps: int = Field(
        default=10_000, gt=0,
        description="Sweeps per relaxation (each followed by the parameters' update) before NotSettled.",
    )
    read_noise: float = Field(
        default=0.0, ge=0, description="σ of one parameter read-back (parameter units); 0 = exact."
    )
    noise_seed: int = Field(default=0, description="Seed of the read-back noise.")

    def capabilities(self) -> frozenset[str]:
        from .system import FloatingHopfield

        return FloatingHopfield.CAPABILITIES

    def settable_coupling(self) -> bool:
        """The knobs' coupling eps is set by the controller (``set_coupling``)."""
        return True

    def build(self, rng: np.random.Generator):
        """Draw the initial parameters from ``rng`` and return the system (knobs start at the parameters)."""
        from .system import FloatingHopfield

        topology, params = self._initial(rng)
        eps = {name: self.coupling_eps for name in param_names(topology.depth)}
        net = FloatingHopfield(
            topology, params, eps, tol=self.tol, tol_param=self.tol_param, max_sweeps=self.max_sweeps,
            dtype=self.dtype,
        )
        net.set_read_noise(self.read_noise, self.noise_seed)
        return net
