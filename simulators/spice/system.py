"""The ngspice-solved resistive network behind the black-box contract (capabilities ``local`` and ``program``).

Same circuit, same parameters and same initialisation as :mod:`aeqprop.simulators.resistive` (a seed gives the
same network in both), but every equilibrium is an operating point computed by ngspice, a separate circuit
simulator: one ``.dc`` sweep, in one ngspice process, per relaxation of a whole batch. The node voltages it
returns are checked (sources, Kirchhoff's current law, diode laws) before anyone reads them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from aeqprop.simulators.core import (
    SimulatedSystem,
    check_even_hidden,
    check_window,
    clip_window,
    own_params,
    param_specs,
)
from aeqprop.simulators.resistive.network import Topology, input_voltages, local_gradients, param_names

from aeqprop.system import NotSettled, RelaxReport

from .diodes import BehaviouralDiode, DiodeModel
from .netlist import SolverOptions, assemble, input_section, nudge_section, parameter_section, saved_vectors
from .runner import RAW_NAME, run_netlist
from .verify import check_inputs, check_state


class SpiceNetwork(SimulatedSystem):
    """A layered nonlinear resistive network whose equilibria ngspice computes, batch by batch.

    Parameters are conductances ``g1..gL`` (S, clipped to ``[g_min, g_max]`` when programmed) and bias currents
    ``b1..bL`` (A), exactly as in :class:`aeqprop.simulators.resistive.ResistiveNetwork`.
    """

    CAPABILITIES = frozenset({"local", "program"})
    NAME = "ngspice network"

    def __init__(
        self,
        topology: Topology,
        params: Mapping[str, np.ndarray],
        *,
        diode: DiodeModel | Literal["none"] | None = None,
        options: SolverOptions | None = None,
        g_min: float = 0.0,
        g_max: float | None = None,
        executable: str = "ngspice",
        timeout_s: float = 600.0,
        capabilities: frozenset[str] | None = None,
    ) -> None:
        check_even_hidden(topology.sizes)
        check_window(g_min, g_max)
        self._params = own_params(params, param_names(topology.depth), np.float64)
        self._topology = topology
        # "none" leaves the diodes out (a linear network, for cross-validation against exact linear solvers).
        self._diode: DiodeModel | None = (
            None if diode == "none" else diode if diode is not None else BehaviouralDiode()
        )
        self._options = options if options is not None else SolverOptions()
        self._g_window = (g_min, g_max)
        self._executable = executable
        self._timeout_s = timeout_s
        self._dtype = np.dtype(np.float64)
        self._apply_window()
        self.spec = self._make_spec(
            topology.sizes[0] // 2, topology.sizes[-1],
            param_specs(self._params, bounds={"g": (g_min, g_max)}, units={"g": "S", "b": "A"}), capabilities,
            f"ngspice-solved resistive network {'-'.join(map(str, topology.sizes))}, "
            f"gain {topology.input_gain} V, {type(self._diode).__name__ if self._diode else 'no diodes'}",
        )
        self._saved = saved_vectors(topology)
        self._reset_state()
        self._v_in: np.ndarray | None = None
        self._param_text: str | None = None
        self._input_text: str | None = None
        self.last_netlist = ""  # the netlist of the latest relaxation, for inspection and tests
        self.iterations = 0  # Newton iterations ngspice spent, over all relaxations

    # --- contract: all systems (nudge, read_outputs, close: SimulatedSystem) --------------------------------
    def clamp(self, x: np.ndarray) -> None:
        """Clamp ``x``; ngspice solves every batch cold, so the state and the target are dropped every time."""
        self._x = self._checked_input(x)
        self._v_in = input_voltages(self._x, self._topology.input_gain)
        self._input_text = None
        self._target = None  # a target belongs to the inputs it was given with
        self._layers = []

    def relax(self) -> RelaxReport:
        self._require_input("relax")
        self._check_stable()
        if self._param_text is None:
            self._param_text = parameter_section(self._topology, self._params, self._diode)
        if self._input_text is None:
            self._input_text = input_section(self._v_in)
        batch = self._v_in.shape[0]
        nudge = nudge_section(self._topology, self._beta, self._target)
        self.last_netlist = assemble(
            f"aeqprop {self.spec.description}, beta={self._beta:g}",
            [self._param_text, self._input_text, nudge], self._options, self._saved, batch, RAW_NAME,
        )
        solution = run_netlist(self.last_netlist, batch, self._executable, self._timeout_s)
        volts = {name.removeprefix("v(").removesuffix(")"): v for name, v in solution.voltages.items()}
        sizes = self._topology.sizes
        sweep = volts.get("v-sweep")
        if sweep is None or not np.array_equal(sweep, np.arange(batch, dtype=np.float64)):
            raise NotSettled(f"ngspice's sweep did not step through the {batch} samples one by one")
        missing = [n for n in self._saved if n not in volts]
        if missing:
            raise NotSettled(f"ngspice returned no voltage for node(s) {missing[:5]}")
        v_read = np.stack([volts[n] for n in self._saved[: sizes[0]]], axis=1)
        layers, start = [], sizes[0]
        for n in sizes[1:]:
            layers.append(np.stack([volts[name] for name in self._saved[start : start + n]], axis=1))
            start += n
        check_inputs(self._v_in, v_read)
        residual = check_state(self._topology, self._params, self._v_in, layers, self._beta, self._target,
                               self._diode, self._options)
        self._layers = layers
        self.iterations += solution.iterations
        return RelaxReport(sweeps=solution.iterations, residual=residual,
                           message=f"ngspice: {solution.iterations} Newton iterations over {batch} sweep points")

    def snapshot(self) -> dict[str, np.ndarray]:
        """Parameters only: every relaxation starts cold, so there is no state worth keeping."""
        return {f"param.{k}": v.copy() for k, v in self._params.items()}

    def close(self) -> None:
        super().close()
        self._layers = []

    # --- not part of the contract ------------------------------------------------------------------------
    def node_voltages(self) -> list[np.ndarray]:
        """Every free layer's node voltages (batch, n_k), layers 1..L: for cross-validation, never for learning."""
        self._require_state()
        return [v.copy() for v in self._layers]

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    @property
    def diode(self) -> DiodeModel | None:
        return self._diode

    def _check_stable(self) -> None:
        """A negative nudge must not outweigh an output's conductance: the circuit would have no stable state.

        ngspice would happily return the saddle point of such a circuit; the resistive solver refuses it with
        the same message.
        """
        depth = self._topology.depth
        total = self._params[f"g{depth}"].sum(axis=0) + self._beta
        if np.any(total <= 0):
            j = int(np.argmin(total))
            raise NotSettled(
                f"energy unbounded below: output node {j} has total conductance "
                f"{total[j] - self._beta:.4g} S and nudge beta={self._beta:.4g} (sum must stay > 0)"
            )

    def _state_sizes(self) -> list[int]:
        return list(self._topology.sizes[1:])

    def _local(self, reads: int) -> dict[str, np.ndarray]:
        """½ mean (ΔV)² over every resistor and −mean V at every bias source, from ngspice's node voltages."""
        assert self._v_in is not None
        return local_gradients(self._params, self._v_in, self._layers)

    def _apply_window(self) -> None:
        clip_window(self._params, [f"g{k}" for k in range(1, self._topology.depth + 1)], *self._g_window)

    def _params_changed(self) -> None:
        self._param_text = None


__all__ = ["SpiceNetwork"]
