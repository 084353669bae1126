"""A resistive network whose conductances and bias currents float (capability ``homeostatic``).

Same circuit, energy and exact solver as :class:`~aeqprop.simulators.resistive.ResistiveNetwork`, but every
parameter is a physical degree of freedom held by a control knob u through a coupling ‖u − θ‖²/(2ε): with the
node voltages fixed, the power function is linear in θ, so each conductance settles at
clip(u − ε·½⟨ΔV²⟩, g_min, g_max) and each bias current at u + ε⟨V⟩. Voltages and parameters relax jointly;
nothing here knows about learning, and there is deliberately no ``read_local``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
from aeqprop.simulators.core import check_even_hidden, check_window, clip_window, own_params, param_specs
from aeqprop.simulators.coupling import ControlCoupling, FloatingParameters, relax_jointly
from aeqprop.simulators.settings import EvenHiddenSimulation
from pydantic import ConfigDict, Field

from aeqprop.settings import Units
from aeqprop.system import RelaxReport

from .network import Topology, init_params, input_voltages, local_gradients, param_names
from .solver import Coefficients, block_coordinate_descent, diagonals, input_drive


class FloatingResistiveNetwork(FloatingParameters):
    """Layered nonlinear resistive network with floating conductances, solved exactly, batched, warm-started."""

    NAME = "floating resistive network"

    def __init__(
        self,
        topology: Topology,
        params: Mapping[str, np.ndarray],
        eps: Mapping[str, float],
        *,
        g_min: float = 0.0,
        g_max: float | None = None,
        tol_v: float = 1e-7,
        tol_param: float = 1e-9,
        max_sweeps: int = 1000,
        max_rounds: int = 200,
        dtype: str = "float64",
    ) -> None:
        check_even_hidden(topology.sizes)
        check_window(g_min, g_max)
        self._topology = topology
        self._dtype = np.dtype(dtype)
        self._params = own_params(params, param_names(topology.depth), self._dtype)
        clip_window(self._params, [f"g{k}" for k in range(1, topology.depth + 1)], g_min, g_max)
        specs = param_specs(self._params, bounds={"g": (g_min, g_max)}, units={"g": "S", "b": "A"})
        self.spec = self._make_spec(
            topology.sizes[0] // 2, topology.sizes[-1], specs, None,
            f"floating-conductance resistive network {'-'.join(map(str, topology.sizes))}, "
            f"gain {topology.input_gain} V",
        )
        self._coupling = ControlCoupling(specs, eps, self._dtype)
        self._coupling.set_controls(self._params)
        self._lows, self._highs = topology.bounds(self._dtype)
        self._tol_v = tol_v
        self._tol_param = tol_param
        self._max_sweeps = max_sweeps
        self._max_rounds = max_rounds
        self._reset_state()
        self._v_in: np.ndarray | None = None

    # --- contract: clamp, nudge, read_outputs, close (SimulatedSystem); knobs, snapshots (FloatingParameters)
    def relax(self) -> RelaxReport:
        """Let node voltages and parameters settle together under the present clamp, nudge and knobs."""
        self._require_input("relax")
        return relax_jointly(
            self._relax_state, lambda: local_gradients(self._params, self._v_in, self._layers), self._params,
            self._coupling, lambda: None, self._tol_param, self._max_rounds,
        )

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    def _state_sizes(self) -> list[int]:
        return list(self._topology.sizes[1:])

    def _on_clamp(self, x: np.ndarray) -> None:
        self._v_in = input_voltages(x, self._topology.input_gain)

    def _relax_state(self) -> RelaxReport:
        coeffs = Coefficients(diagonals(self._params, self._topology.depth), input_drive(self._params, self._v_in))
        return block_coordinate_descent(
            self._params, coeffs, self._layers, self._lows, self._highs,
            self._beta, self._target, self._tol_v, self._max_sweeps,
        )


class FloatingResistiveConfig(EvenHiddenSimulation):
    """A layered nonlinear resistive network whose conductances float under knobs u (``resistive-floating``)."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a resistive network whose conductances float under control knobs (for aeqprop)"

    kind: Literal["resistive-floating"] = "resistive-floating"
    inputs: Units = Field(description="Input features; each drives two sources, +gain*x and -gain*x.")
    hidden: list[Units] = Field(default=[32], description="Hidden layer sizes, each even (half V>=0, half V<=0).")
    outputs: Units = Field(description="Linear output nodes (one per class).")
    input_gain: float = Field(default=4.0, gt=0, description="Volts per unit of input.")
    init_gain: float = Field(
        default=1.0, gt=0, description="Conductance init scale: U(-s, s)/sqrt(fan_in), clipped at 0."
    )
    bias_init: float = Field(default=0.0, ge=0, description="Bias currents drawn from U(-bias_init, bias_init) A.")
    init_abs: bool = Field(
        default=False,
        description="Draw conductances as |U(-s, s)|/sqrt(fan_in) instead of clipping half of them to 0: a floating "
        "conductance that starts on its stop at 0 is held there and never drifts off it.",
    )
    g_min: float = Field(default=0.0, ge=0, description="Lower end of the conductance window (S).")
    g_max: float | None = Field(
        default=None, gt=0, description="Upper end of the conductance window (S); none = unbounded."
    )
    coupling_eps: float = Field(
        default=0.01, gt=0,
        description="Coupling eps of every group until a controller sets its own (aeqprop sets algorithm.eps).",
    )
    tol_v: float = Field(
        default=1e-7, gt=0, description="Voltages settled when no node moves more than this in a sweep."
    )
    tol_param: float = Field(
        default=1e-9, gt=0, description="Parameters settled when none moves more than this in a round."
    )
    max_sweeps: int = Field(default=1000, gt=0, description="Sweeps per voltage relaxation before NotSettled.")
    max_rounds: int = Field(default=200, gt=0, description="Voltage/parameter rounds per relaxation before NotSettled.")
    dtype: Literal["float64", "float32"] = "float64"
    read_noise: float = Field(
        default=0.0, ge=0, description="σ of one parameter read-back (parameter units); 0 = exact."
    )
    noise_seed: int = Field(default=0, description="Seed of the read-back noise.")

    def capabilities(self) -> frozenset[str]:
        return FloatingResistiveNetwork.CAPABILITIES

    def settable_coupling(self) -> bool:
        """The knobs' coupling eps is set by the controller (``set_coupling``)."""
        return True

    def build(self, rng: np.random.Generator) -> FloatingResistiveNetwork:
        """Draw the initial parameters from ``rng`` and return the system (knobs start at the parameters)."""
        topology = Topology((2 * self.inputs, *self.hidden, self.outputs), self.input_gain)
        params = init_params(topology, rng, self.init_gain, self.bias_init, np.dtype(self.dtype))
        if self.init_abs:
            for k in range(1, topology.depth + 1):
                scale = self.init_gain / np.sqrt(topology.sizes[k - 1])
                params[f"g{k}"] = np.abs(rng.uniform(-scale, scale, size=params[f"g{k}"].shape)).astype(self.dtype)
        eps = {name: self.coupling_eps for name in param_names(topology.depth)}
        net = FloatingResistiveNetwork(
            topology, params, eps, g_min=self.g_min, g_max=self.g_max, tol_v=self.tol_v, tol_param=self.tol_param,
            max_sweeps=self.max_sweeps, max_rounds=self.max_rounds, dtype=self.dtype,
        )
        net.set_read_noise(self.read_noise, self.noise_seed)
        return net


__all__ = ["FloatingResistiveConfig", "FloatingResistiveNetwork"]
