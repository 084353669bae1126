"""The resistive network behind the black-box contract (capabilities ``local``, ``program``, ``stepwise``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aeqprop.system import CapabilityError, ParamSpec, RelaxReport, SystemSpec, nudge_target

from .network import Topology, input_voltages, local_gradients, param_names
from .solver import Coefficients, block_coordinate_descent, diagonals, extrapolate, input_drive


class ResistiveNetwork:
    """A layered nonlinear resistive network solved exactly, batched, warm-started between calls.

    Parameters are conductances ``g1..gL`` (siemens, clipped to ``[g_min, g_max]`` when programmed) and
    bias currents ``b1..bL`` (amperes). The relaxation tolerance is absolute, in volts.
    """

    CAPABILITIES = frozenset({"local", "program", "stepwise"})

    def __init__(
        self,
        topology: Topology,
        params: Mapping[str, np.ndarray],
        *,
        g_min: float = 0.0,
        g_max: float | None = None,
        tol_v: float = 1e-6,
        max_sweeps: int = 1000,
        dtype: str = "float64",
        capabilities: frozenset[str] | None = None,
    ) -> None:
        if any(n % 2 for n in topology.sizes[1:-1]):
            raise ValueError(f"hidden layer sizes must be even (half V>=0, half V<=0), got {topology.sizes[1:-1]}")
        if g_min < 0 or (g_max is not None and g_max <= g_min):
            raise ValueError(f"conductance window must satisfy 0 <= g_min < g_max, got [{g_min}, {g_max}]")
        self._topology = topology
        self._dtype = np.dtype(dtype)
        self._g_window = (g_min, g_max)
        self._tol_v = tol_v
        self._max_sweeps = max_sweeps
        names = param_names(topology.depth)
        missing = set(names) - set(params)
        if missing:
            raise ValueError(f"missing parameters {sorted(missing)}")
        self._params = {name: np.array(params[name], dtype=self._dtype) for name in names}
        self._clip_conductances()
        self._lows, self._highs = topology.bounds(self._dtype)
        spec_params = {}
        for k in range(1, topology.depth + 1):
            spec_params[f"g{k}"] = ParamSpec(self._params[f"g{k}"].shape, (g_min, g_max), "S", k)
        for k in range(1, topology.depth + 1):
            spec_params[f"b{k}"] = ParamSpec(self._params[f"b{k}"].shape, (None, None), "A", k, "bias")
        self.spec = SystemSpec(
            n_inputs=topology.sizes[0] // 2,
            n_outputs=topology.sizes[-1],
            params=spec_params,
            capabilities=self.CAPABILITIES if capabilities is None else frozenset(capabilities),
            max_batch=None,
            description=f"resistive network {'-'.join(map(str, topology.sizes))}, gain {topology.input_gain} V",
        )
        self._v_in: np.ndarray | None = None
        self._layers: list[np.ndarray] = []
        self._beta = 0.0
        self._target: np.ndarray | None = None
        self._diag: list[np.ndarray] | None = None
        self._drive: np.ndarray | None = None
        self._coeffs: Coefficients | None = None  # diag + drive + their cached reciprocals, until either changes
        self._workspace: dict = {}  # operand buffers of local_gradients, reused between reads
        self._free_state: list[np.ndarray] | None = None  # layers when the nudge last left 0
        self._extrapolate: float | None = None  # pending warm start: new beta / previous beta

    # --- contract: all systems ----------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=self._dtype)
        if x.ndim != 2 or x.shape[1] != self.spec.n_inputs:
            raise ValueError(f"clamp: expected shape (batch, {self.spec.n_inputs}), got {x.shape}")
        self._v_in = input_voltages(x, self._topology.input_gain)
        self._drive = None
        self._coeffs = None
        self._free_state = None
        batch = x.shape[0]
        if not self._layers or self._layers[0].shape[0] != batch:
            self._layers = [np.zeros((batch, n), dtype=self._dtype) for n in self._topology.sizes[1:]]
            self._target = None

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        previous, self._beta = self._beta, float(beta)
        self._target = nudge_target(
            self._beta, target, self._target, self._batch, self.spec.n_outputs, self._dtype
        )
        # Warm start for the next relax (speed only: the equilibrium is unique, the start point is free).
        if previous == 0.0 and self._beta != 0.0 and self._layers:
            self._free_state = [layer.copy() for layer in self._layers]
        self._extrapolate = self._beta / previous if previous != 0.0 and self._beta != previous else None

    def relax(self) -> RelaxReport:
        if self._v_in is None:
            raise RuntimeError("relax: clamp an input first")
        if self._extrapolate is not None and self._free_state is not None:
            extrapolate(self._layers, self._free_state, self._extrapolate, self._lows, self._highs)
        self._extrapolate = None
        return block_coordinate_descent(
            self._params, self._coefficients(), self._layers, self._lows, self._highs,
            self._beta, self._target, self._tol_v, self._max_sweeps,
        )

    def step(self, n: int = 1) -> RelaxReport:
        """Capability ``stepwise``: exactly ``n`` block-coordinate sweeps under the present clamp and nudge."""
        self._offers("stepwise")
        if n < 1:
            raise ValueError(f"step: n must be >= 1, got {n}")
        if self._v_in is None:
            raise RuntimeError("step: clamp an input first")
        self._extrapolate = None  # stepwise dynamics continue from the present state, as a circuit would
        return block_coordinate_descent(
            self._params, self._coefficients(), self._layers, self._lows, self._highs,
            self._beta, self._target, self._tol_v, n, exact_sweeps=True,
        )

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        self._require_state()
        return self._layers[-1].copy()

    def snapshot(self) -> dict[str, np.ndarray]:
        snap = {f"param.{k}": v.copy() for k, v in self._params.items()}
        snap.update({f"state.{i}": v.copy() for i, v in enumerate(self._layers)})
        return snap

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        for name in self._params:
            self._params[name] = np.array(snapshot[f"param.{name}"], dtype=self._dtype)
        self._layers = [
            np.array(snapshot[f"state.{i}"], dtype=self._dtype)
            for i in range(self._topology.depth) if f"state.{i}" in snapshot
        ]
        self._invalidate()

    def close(self) -> None:
        self._v_in = None

    # --- "local" ------------------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        self._offers("local")
        self._require_state()
        return local_gradients(self._params, self._v_in, self._layers, self._workspace)

    # --- "program" ----------------------------------------------------------------------------------------
    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        self._offers("program")
        for name, step in delta.items():
            if name not in self._params:
                raise KeyError(f"program: unknown parameter {name!r}; known: {sorted(self._params)}")
            if np.shape(step) != self._params[name].shape:
                raise ValueError(f"program {name}: expected shape {self._params[name].shape}, got {np.shape(step)}")
            self._params[name] += step
        self._clip_conductances()
        self._invalidate()

    def read_params(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._params.items()}

    # --- capabilities this system does not have ----------------------------------------------------------
    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the resistive network has no homeostatic control knobs")

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    def _batch(self) -> int:
        if self._v_in is None:
            raise RuntimeError("clamp an input first")
        return self._v_in.shape[0]

    def _offers(self, capability: str) -> None:
        if capability not in self.spec.capabilities:
            raise CapabilityError(f"this resistive network is configured without capability {capability!r}")

    def _require_state(self) -> None:
        if self._v_in is None or not self._layers:
            raise RuntimeError("clamp and relax first")

    def _invalidate(self) -> None:
        self._diag = None
        self._drive = None
        self._coeffs = None

    def _coefficients(self) -> Coefficients:
        if self._coeffs is None:
            if self._diag is None:
                self._diag = diagonals(self._params, self._topology.depth)
            if self._drive is None:
                self._drive = input_drive(self._params, self._v_in)
            self._coeffs = Coefficients(diag=self._diag, drive=self._drive)
        return self._coeffs

    def _clip_conductances(self) -> None:
        lo, hi = self._g_window
        for k in range(1, self._topology.depth + 1):
            g = self._params[f"g{k}"]
            np.maximum(g, lo, out=g)  # maximum/minimum: one pass each, cheaper than clip on large arrays
            if hi is not None:
                np.minimum(g, hi, out=g)
