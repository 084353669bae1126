"""A resistive network whose conductances and bias currents float (capability ``homeostatic``).

Same circuit, energy and exact solver as :class:`~aeqprop.simulators.resistive.ResistiveNetwork`, but every
parameter is a physical degree of freedom held by a control knob u through a coupling ‖u − θ‖²/(2ε): with the
node voltages fixed, the power function is linear in θ, so each conductance settles at
clip(u − ε·½⟨ΔV²⟩, g_min, g_max) and each bias current at u + ε⟨V⟩. Voltages and parameters relax jointly;
nothing here knows about learning, and there is deliberately no ``read_local``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from aeqprop.system import CapabilityError, ParamSpec, RelaxReport, SystemSpec, nudge_target
from aeqprop.simulators.coupling import ControlCoupling, FloatingParameters, relax_jointly

from .network import Topology, init_params, input_voltages, local_gradients, param_names
from .solver import Coefficients, block_coordinate_descent, diagonals, input_drive


class FloatingResistiveNetwork(FloatingParameters):
    """Layered nonlinear resistive network with floating conductances, solved exactly, batched, warm-started."""

    CAPABILITIES = frozenset({"homeostatic"})

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
        if any(n % 2 for n in topology.sizes[1:-1]):
            raise ValueError(f"hidden layer sizes must be even (half V>=0, half V<=0), got {topology.sizes[1:-1]}")
        if g_min < 0 or (g_max is not None and g_max <= g_min):
            raise ValueError(f"conductance window must satisfy 0 <= g_min < g_max, got [{g_min}, {g_max}]")
        self._topology = topology
        self._dtype = np.dtype(dtype)
        names = param_names(topology.depth)
        missing = set(names) - set(params)
        if missing:
            raise ValueError(f"missing parameters {sorted(missing)}")
        self._params = {name: np.array(params[name], dtype=self._dtype) for name in names}
        specs = {}
        for k in range(1, topology.depth + 1):
            specs[f"g{k}"] = ParamSpec(self._params[f"g{k}"].shape, (g_min, g_max), "S", k)
            np.clip(self._params[f"g{k}"], g_min, g_max, out=self._params[f"g{k}"])
        for k in range(1, topology.depth + 1):
            specs[f"b{k}"] = ParamSpec(self._params[f"b{k}"].shape, (None, None), "A", k, "bias")
        self.spec = SystemSpec(
            n_inputs=topology.sizes[0] // 2,
            n_outputs=topology.sizes[-1],
            params=specs,
            capabilities=self.CAPABILITIES,
            description=f"floating-conductance resistive network {'-'.join(map(str, topology.sizes))}, "
            f"gain {topology.input_gain} V",
        )
        self._coupling = ControlCoupling(specs, eps, self._dtype)
        self._coupling.set_controls(self._params)
        self._lows, self._highs = topology.bounds(self._dtype)
        self._tol_v = tol_v
        self._tol_param = tol_param
        self._max_sweeps = max_sweeps
        self._max_rounds = max_rounds
        self._v_in: np.ndarray | None = None
        self._layers: list[np.ndarray] = []
        self._beta = 0.0
        self._target: np.ndarray | None = None

    # --- contract: all systems ----------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=self._dtype)
        if x.ndim != 2 or x.shape[1] != self.spec.n_inputs:
            raise ValueError(f"clamp: expected shape (batch, {self.spec.n_inputs}), got {x.shape}")
        self._v_in = input_voltages(x, self._topology.input_gain)
        if not self._layers or self._layers[0].shape[0] != x.shape[0]:
            self._layers = [np.zeros((x.shape[0], n), dtype=self._dtype) for n in self._topology.sizes[1:]]
            self._target = None

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        self._beta = float(beta)
        self._target = nudge_target(
            self._beta, target, self._target, self._batch, self.spec.n_outputs, self._dtype
        )

    def relax(self) -> RelaxReport:
        """Let node voltages and parameters settle together under the present clamp, nudge and knobs."""
        if self._v_in is None:
            raise RuntimeError("relax: clamp an input first")
        return relax_jointly(
            self._relax_state, lambda: local_gradients(self._params, self._v_in, self._layers), self._params,
            self._coupling, lambda: None, self._tol_param, self._max_rounds,
        )

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        if self._v_in is None or not self._layers:
            raise RuntimeError("clamp and relax first")
        return self._layers[-1].copy()

    def close(self) -> None:
        self._v_in = None

    # --- "homeostatic": set_controls, set_coupling, read_params, snapshot, restore come from FloatingParameters
    # --- what this system deliberately does not offer ---------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        raise CapabilityError("the floating resistive network cannot measure voltage drops (no 'local' capability)")

    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the floating resistive network's conductances are held by knobs, not programmed")

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    def _batch(self) -> int:
        if self._v_in is None:
            raise RuntimeError("clamp an input first")
        return self._v_in.shape[0]

    def _relax_state(self) -> RelaxReport:
        coeffs = Coefficients(diagonals(self._params, self._topology.depth), input_drive(self._params, self._v_in))
        return block_coordinate_descent(
            self._params, coeffs, self._layers, self._lows, self._highs,
            self._beta, self._target, self._tol_v, self._max_sweeps,
        )


class FloatingResistiveConfig(BaseModel):
    """A layered nonlinear resistive network whose conductances float under knobs u (``resistive-floating``)."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["resistive-floating"] = "resistive-floating"
    inputs: int = Field(gt=0, description="Input features; each drives two sources, +gain*x and -gain*x.")
    hidden: list[int] = Field(default=[32], description="Hidden layer sizes, each even (half V>=0, half V<=0).")
    outputs: int = Field(gt=0, description="Linear output nodes (one per class).")
    input_gain: float = Field(default=4.0, gt=0, description="Volts per unit of input.")
    init_gain: float = Field(default=1.0, gt=0, description="Conductance init scale: U(-s, s)/sqrt(fan_in), clipped at 0.")
    bias_init: float = Field(default=0.0, ge=0, description="Bias currents drawn from U(-bias_init, bias_init) A.")
    init_abs: bool = Field(
        default=False,
        description="Draw conductances as |U(-s, s)|/sqrt(fan_in) instead of clipping half of them to 0: a floating "
        "conductance that starts on its stop at 0 is held there and never drifts off it.",
    )
    g_min: float = Field(default=0.0, ge=0, description="Lower end of the conductance window (S).")
    g_max: float | None = Field(default=None, gt=0, description="Upper end of the conductance window (S); none = unbounded.")
    coupling_eps: float = Field(
        default=0.01, gt=0,
        description="Coupling eps of every group until a controller sets its own (aeqprop sets algorithm.eps).",
    )
    tol_v: float = Field(default=1e-7, gt=0, description="Voltages settled when no node moves more than this in a sweep.")
    tol_param: float = Field(default=1e-9, gt=0, description="Parameters settled when none moves more than this in a round.")
    max_sweeps: int = Field(default=1000, gt=0, description="Sweeps per voltage relaxation before NotSettled.")
    max_rounds: int = Field(default=200, gt=0, description="Voltage/parameter rounds per relaxation before NotSettled.")
    dtype: Literal["float64", "float32"] = "float64"
    read_noise: float = Field(default=0.0, ge=0, description="σ of one parameter read-back (parameter units); 0 = exact.")
    noise_seed: int = Field(default=0, description="Seed of the read-back noise.")

    @field_validator("hidden")
    @classmethod
    def _even(cls, sizes: list[int]) -> list[int]:
        bad = [n for n in sizes if n <= 0 or n % 2]
        if bad:
            raise ValueError(f"hidden sizes must be positive and even, got {bad}")
        return sizes

    def capabilities(self) -> frozenset[str]:
        return FloatingResistiveNetwork.CAPABILITIES

    def feature_counts(self) -> tuple[int, int]:
        """(inputs, outputs) the data must provide."""
        return self.inputs, self.outputs

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
