"""The resistive network behind the black-box contract (capabilities ``local``, ``program``, ``stepwise``,
``contrast``)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from aeqprop.simulators.core import (
    SimulatedSystem,
    check_even_hidden,
    check_window,
    clip_window,
    own_params,
    param_specs,
)

from aeqprop.system import RelaxReport

from .contrast import Contrast
from .network import Topology, input_voltages, local_gradients, param_names
from .solver import Coefficients, _rows, block_coordinate_descent, diagonals, extrapolate, input_drive


class ResistiveNetwork(SimulatedSystem):
    """A layered nonlinear resistive network solved exactly, batched, warm-started between calls.

    Parameters are conductances ``g1..gL`` (siemens, clipped to ``[g_min, g_max]`` when programmed) and
    bias currents ``b1..bL`` (amperes). The relaxation tolerance is absolute, in volts.

    Subclass interface (protected by design, for device-backed variants such as the memristor crossbar):
    override :meth:`_measure` and :meth:`_node_reads` to make reads noisy, call :meth:`_replace_params` to put
    new parameter values (e.g. true device conductances) into the circuit, and read :attr:`dtype`.
    """

    CAPABILITIES = frozenset({"local", "program", "stepwise", "contrast"})
    NAME = "resistive network"

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
        check_even_hidden(topology.sizes)
        check_window(g_min, g_max)
        self._topology = topology
        self._dtype = np.dtype(dtype)
        self._g_window = (g_min, g_max)
        self._tol_v = tol_v
        self._max_sweeps = max_sweeps
        self._params = own_params(params, param_names(topology.depth), self._dtype)
        self._conductances = [f"g{k}" for k in range(1, topology.depth + 1)]
        self._window_fill: dict = {}  # bound-filled buffers of clip_window
        self._clip_conductances()
        self._lows, self._highs = topology.bounds(self._dtype)
        self._bounds_by_batch: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._spare: list[np.ndarray] = []  # the solver's ping-pong buffers, kept between relaxations
        # sweep plans hold the parameter arrays themselves: valid until an array is replaced (restore)
        self._plans: dict[bool, list] = {}
        self.spec = self._make_spec(
            topology.sizes[0] // 2, topology.sizes[-1],
            param_specs(self._params, bounds={"g": (g_min, g_max)}, units={"g": "S", "b": "A"}), capabilities,
            f"resistive network {'-'.join(map(str, topology.sizes))}, gain {topology.input_gain} V",
        )
        self._reset_state()
        self._v_in: np.ndarray | None = None
        self._diag: list[np.ndarray] | None = None
        self._drive: np.ndarray | None = None
        self._coeffs: Coefficients | None = None  # diag + drive + their cached reciprocals, until either changes
        self._workspace: dict = {}  # operand buffers of local_gradients, reused between reads
        self._free_state: list[np.ndarray] | None = None  # layers when the nudge last left 0
        self._extrapolate: float | None = None  # pending warm start: new beta / previous beta
        self._contrast = Contrast()  # phases accumulated for the fused update (capability "contrast")

    # --- contract: all systems (clamp, read_outputs, snapshot, restore, close: SimulatedSystem) -------------
    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        previous = self._beta
        super().nudge(beta, target)
        # Warm start for the next relax (speed only: the equilibrium is unique, the start point is free).
        if previous == 0.0 and self._beta != 0.0 and self._layers:
            self._free_state = [layer.copy() for layer in self._layers]
        self._extrapolate = self._beta / previous if previous != 0.0 and self._beta != previous else None

    def relax(self) -> RelaxReport:
        self._require_input("relax")
        lows, highs = self._bounds_full()
        if self._extrapolate is not None and self._free_state is not None:
            extrapolate(self._layers, self._free_state, self._extrapolate, lows, highs)
        self._extrapolate = None
        return block_coordinate_descent(
            self._params, self._coefficients(), self._layers, lows, highs,
            self._beta, self._target, self._tol_v, self._max_sweeps, buffers=self._spare,
        )

    def step(self, n: int = 1) -> RelaxReport:
        """Capability ``stepwise``: exactly ``n`` block-coordinate sweeps under the present clamp and nudge."""
        self._offers("stepwise")
        if n < 1:
            raise ValueError(f"step: n must be >= 1, got {n}")
        self._require_input("step")
        self._extrapolate = None  # stepwise dynamics continue from the present state, as a circuit would
        lows, highs = self._bounds_full()
        return block_coordinate_descent(
            self._params, self._coefficients(), self._layers, lows, highs,
            self._beta, self._target, self._tol_v, n, exact_sweeps=True, buffers=self._spare,
        )

    # --- "contrast": the fused EP step ---------------------------------------------------------------------
    def accumulate_local(self, weight: float, reads: int = 1) -> None:
        """Hold the present equilibrium's node voltages with ``weight`` (see :mod:`.contrast`)."""
        self._offers("contrast")
        self._require_state()
        self._contrast.add(float(weight), self._node_reads(self._layers, reads))

    def program_accumulated(self, rates: Mapping[str, float]) -> None:
        """θ += rate · Σ weight · dP/dθ over the held phases, one gemm per conductance matrix; then the window."""
        self._offers("contrast")
        unknown = set(rates) - set(self._params)
        if unknown:
            raise KeyError(f"program_accumulated: unknown parameters {sorted(unknown)}; known: {sorted(self._params)}")
        if not len(self._contrast) or self._v_in is None:
            raise RuntimeError("program_accumulated: nothing accumulated since the last clamp")
        self._contrast.apply(self._params, self._v_in, rates)
        self._apply_window()
        self._params_changed()

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        self._plans.clear()  # new parameter arrays
        super().restore(snapshot)
        self._contrast.clear()

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def dtype(self) -> np.dtype:
        """The floating-point type of parameters and state."""
        return self._dtype

    def _bounds_full(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The diode bounds repeated over the present batch (cached per batch size; see ``Coefficients.inverse``)."""
        batch = self._layers[0].shape[0] if self._layers else 0
        full = self._bounds_by_batch.get(batch)
        if full is None:
            if len(self._bounds_by_batch) > 4:
                self._bounds_by_batch.clear()
            full = self._bounds_by_batch[batch] = (
                [_rows(v, batch) for v in self._lows], [_rows(v, batch) for v in self._highs],
            )
        return full

    def _coefficients(self) -> Coefficients:
        """The solver's coefficients (and their cached reciprocals), kept until parameters change or a clamp."""
        if self._coeffs is None:
            if self._diag is None:
                self._diag = diagonals(self._params, self._topology.depth)
            if self._drive is None:
                self._drive = input_drive(self._params, self._v_in)
            self._coeffs = Coefficients(diag=self._diag, drive=self._drive, plans=self._plans)
        return self._coeffs

    def _state_sizes(self) -> list[int]:
        return list(self._topology.sizes[1:])

    def _on_clamp(self, x: np.ndarray) -> None:
        self._v_in = input_voltages(x, self._topology.input_gain)
        self._drive = None
        self._coeffs = None
        self._free_state = None
        self._contrast.clear()

    def _local(self, reads: int) -> dict[str, np.ndarray]:
        return local_gradients(self._params, self._v_in, self._node_reads(self._layers, reads), self._workspace)

    def _dissipated_power(self) -> float:
        """Power (W) the conductances dissipate at the present state, summed over the batch: Σ g (V_i − V_j)²."""
        local = local_gradients(self._params, self._v_in, self._layers)  # ½ mean over the batch of (ΔV)²
        batch = self._batch()
        return sum(2.0 * batch * float(np.sum(self._params[f"g{k}"] * local[f"g{k}"]))
                   for k in range(1, self._topology.depth + 1))

    def _node_reads(self, layers: list[np.ndarray], reads: int) -> list[np.ndarray]:
        """The node voltages a local measurement sees of the free ``layers``: exact here (not copied: only read)."""
        return layers

    def _replace_params(self, values: Mapping[str, np.ndarray]) -> None:
        """Put new values of the named parameters into the circuit (cast to :attr:`dtype`, no window applied)."""
        for name, value in values.items():
            self._params[name] = value.astype(self._dtype)
        self._plans.clear()  # new parameter arrays
        self._invalidate()

    def _apply_window(self) -> None:
        self._clip_conductances()

    def _params_changed(self) -> None:
        self._invalidate()

    def _invalidate(self) -> None:
        self._diag = None
        self._drive = None
        self._coeffs = None

    def _clip_conductances(self) -> None:
        clip_window(self._params, self._conductances, *self._g_window, fill=self._window_fill)
