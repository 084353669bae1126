"""The resistive network behind the black-box contract (capabilities ``local``, ``program``, ``stepwise``,
``contrast``, ``phases``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from aeqprop.simulators.core import (
    SimulatedSystem,
    check_even_hidden,
    check_window,
    clip_window,
    own_params,
    param_specs,
)

from aeqprop.system import RelaxReport, real_beta

from .contrast import Contrast
from .network import Topology, input_voltages, local_gradients, param_names
from .solver import (
    Coefficients,
    SweepBuffers,
    _rows,
    block_coordinate_descent,
    diagonals,
    extrapolate,
    input_drive,
    relax_phases,
)


class ResistiveNetwork(SimulatedSystem):
    """A layered nonlinear resistive network solved exactly, batched, warm-started between calls.

    Parameters are conductances ``g1..gL`` (siemens, clipped to ``[g_min, g_max]`` when programmed) and
    bias currents ``b1..bL`` (amperes). The relaxation tolerance is absolute, in volts.

    Subclass interface (protected by design, for device-backed variants such as the memristor crossbar):
    override :meth:`_measure` and :meth:`_node_reads` to make reads noisy, call :meth:`_replace_params` to put
    new parameter values (e.g. true device conductances) into the circuit, and read :attr:`dtype`.
    """

    CAPABILITIES = frozenset({"local", "program", "stepwise", "contrast", "phases"})
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
        self._widest = max(topology.sizes[1:])  # the widest free layer (see STACK_LIMIT)
        self._window_fill: dict = {}  # bound-filled buffers of clip_window
        self._clip_conductances()
        self._lows, self._highs = topology.bounds(self._dtype)
        self._bounds_by_batch: dict[int, tuple[list[np.ndarray], list[np.ndarray]]] = {}
        self._sweep_buffers = SweepBuffers()  # the solver's ping-pong state arrays, kept between relaxations
        self._phase_buffers = SweepBuffers()  # the same for the stacked phases of ``accumulate_phases``
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
            self._beta, self._target, self._tol_v, self._max_sweeps, buffers=self._sweep_buffers,
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
            self._beta, self._target, self._tol_v, n, exact_sweeps=True, buffers=self._sweep_buffers,
        )

    # --- "contrast": the fused EP step ---------------------------------------------------------------------
    def accumulate_local(self, weight: float, reads: int = 1) -> None:
        """Hold the present equilibrium's node voltages with ``weight`` (see :mod:`.contrast`)."""
        self._offers("contrast")
        self._require_state()
        self._contrast.add(float(weight), self._node_reads(self._layers, reads))

    #: Phases are stacked into one batch while phases x batch x widest layer stays at or below this many node
    #: voltages: below it a sweep costs its numpy calls (about a microsecond each), so M phases cost about one;
    #: above it the arithmetic dominates and sequential phases, each warm-started from the free equilibrium,
    #: need fewer sweeps (DRN-XS at batch 4: 1,200, stacked; DRN-1H: 12,288, sequential).
    STACK_LIMIT = 4096

    def accumulate_phases(
        self, betas: Sequence[float], weights: Sequence[float], target: np.ndarray, reads: int = 1
    ) -> list[RelaxReport]:
        """Capability ``phases``: settle every phase of this clamp and hold each with its weight; afterwards the
        network sits at the last phase's equilibrium under its nudge. Small problems are solved as one stacked
        batch (see :func:`.solver.relax_phases` and :attr:`STACK_LIMIT`), larger ones phase after phase."""
        self._offers("phases")
        self._require_input("accumulate_phases")
        betas = [real_beta(b, self.NAME) for b in betas]
        if not betas or len(weights) != len(betas):
            raise ValueError(f"accumulate_phases: need one weight per nudge, got {len(betas)} nudges and "
                             f"{len(weights)} weights")
        batch, phases = self._batch(), len(betas)
        if phases * batch * self._widest > self.STACK_LIMIT:
            return self._phases_in_turn(betas, weights, target, reads)
        stacked = self._phase_buffers.stacked(self._layers, phases)
        super().nudge(betas[-1], target)  # checks the target; the state left behind is the last phase's
        held = self._target
        if held is None:  # only free phases may go without a target
            if any(betas):
                raise ValueError("accumulate_phases: a nonzero nudge needs a target")
            held = np.zeros((batch, self.spec.n_outputs), dtype=self._dtype)
        self._free_state = self._extrapolate = None
        lows, highs = self._bounds_full(batch * phases)
        report = relax_phases(self._params, self._coefficients(), stacked, lows, highs, betas, held,
                              self._tol_v, self._max_sweeps, buffers=self._phase_buffers)
        seen = self._node_reads(stacked, reads)
        self._contrast.add_phases([float(w) for w in weights], seen, batch)
        self._layers = [layer[(phases - 1) * batch :] for layer in stacked]
        return [report] * phases

    def _phases_in_turn(
        self, betas: list[float], weights: Sequence[float], target: np.ndarray, reads: int
    ) -> list[RelaxReport]:
        """The phases one after another: free ones first, then the nudged ones in their order, each warm-started
        from the free equilibrium (see :meth:`nudge`); a free last phase is then put back exactly."""
        order = sorted(range(len(betas)), key=lambda m: betas[m] != 0.0)
        reports: dict[int, RelaxReport] = {}
        free: list[np.ndarray] | None = None
        for m in order:
            self.nudge(betas[m], target)
            reports[m] = self.relax()
            if betas[m] == 0.0 and free is None:
                free = [layer.copy() for layer in self._layers]
            if weights[m]:
                self._contrast.add(float(weights[m]), self._node_reads(self._layers, reads))
        if order[-1] != len(betas) - 1 and free is not None:  # the last phase is a free one, solved first
            self._layers = free
            super().nudge(0.0, target)
        return [reports[m] for m in range(len(betas))]

    def program_accumulated(self, rates: Mapping[str, float]) -> None:
        """θ += rate · Σ weight · dP/dθ over the held phases, one gemm per conductance matrix; then the window."""
        self._offers("contrast")
        unknown = rates.keys() - self._params.keys()
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

    def _bounds_full(self, batch: int | None = None) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """The diode bounds repeated over ``batch`` rows, the present batch by default (cached per batch size;
        see ``Coefficients.inverse``)."""
        if batch is None:
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
