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

from aeqprop.simulators.resistive.network import Topology, input_voltages, local_gradients, param_names
from aeqprop.system import CapabilityError, NotSettled, ParamSpec, RelaxReport, SystemSpec, nudge_target

from .diodes import BehaviouralDiode, DiodeModel
from .netlist import SolverOptions, assemble, input_section, nudge_section, parameter_section, saved_vectors
from .runner import RAW_NAME, run_netlist
from .verify import check_inputs, check_state


class SpiceNetwork:
    """A layered nonlinear resistive network whose equilibria ngspice computes, batch by batch.

    Parameters are conductances ``g1..gL`` (S, clipped to ``[g_min, g_max]`` when programmed) and bias currents
    ``b1..bL`` (A), exactly as in :class:`aeqprop.simulators.resistive.ResistiveNetwork`.
    """

    CAPABILITIES = frozenset({"local", "program"})

    def __init__(
        self,
        topology: Topology,
        params: Mapping[str, np.ndarray],
        *,
        diode: DiodeModel | None | Literal["none"] = None,
        options: SolverOptions | None = None,
        g_min: float = 0.0,
        g_max: float | None = None,
        executable: str = "ngspice",
        timeout_s: float = 600.0,
        capabilities: frozenset[str] | None = None,
    ) -> None:
        if any(n % 2 for n in topology.sizes[1:-1]):
            raise ValueError(f"hidden layer sizes must be even (half V>=0, half V<=0), got {topology.sizes[1:-1]}")
        if g_min < 0 or (g_max is not None and g_max <= g_min):
            raise ValueError(f"conductance window must satisfy 0 <= g_min < g_max, got [{g_min}, {g_max}]")
        names = param_names(topology.depth)
        missing = set(names) - set(params)
        if missing:
            raise ValueError(f"missing parameters {sorted(missing)}")
        self._topology = topology
        # "none" leaves the diodes out (a linear network, for cross-validation against exact linear solvers).
        self._diode: DiodeModel | None = (
            None if diode == "none" else diode if diode is not None else BehaviouralDiode()
        )
        self._options = options if options is not None else SolverOptions()
        self._g_window = (g_min, g_max)
        self._executable = executable
        self._timeout_s = timeout_s
        self._params = {name: np.array(params[name], dtype=np.float64) for name in names}
        self._clip_conductances()
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
            description=f"ngspice-solved resistive network {'-'.join(map(str, topology.sizes))}, "
            f"gain {topology.input_gain} V, {type(self._diode).__name__ if self._diode else 'no diodes'}",
        )
        self._saved = saved_vectors(topology)
        self._v_in: np.ndarray | None = None
        self._layers: list[np.ndarray] = []
        self._beta = 0.0
        self._target: np.ndarray | None = None
        self._param_text: str | None = None
        self._input_text: str | None = None
        self.last_netlist = ""  # the netlist of the latest relaxation, for inspection and tests
        self.iterations = 0  # Newton iterations ngspice spent, over all relaxations

    # --- contract: all systems ----------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.spec.n_inputs:
            raise ValueError(f"clamp: expected shape (batch, {self.spec.n_inputs}), got {x.shape}")
        self._v_in = input_voltages(x, self._topology.input_gain)
        self._input_text = None
        self._target = None  # a target belongs to the inputs it was given with
        self._layers = []

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        self._beta = float(beta)
        self._target = nudge_target(
            self._beta, target, self._target, self._batch, self.spec.n_outputs, np.float64
        )

    def relax(self) -> RelaxReport:
        if self._v_in is None:
            raise RuntimeError("relax: clamp an input first")
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

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        self._require_state()
        return self._layers[-1].copy()

    def snapshot(self) -> dict[str, np.ndarray]:
        return {f"param.{k}": v.copy() for k, v in self._params.items()}

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        for name in self._params:
            self._params[name] = np.array(snapshot[f"param.{name}"], dtype=np.float64)
        self._param_text = None

    def close(self) -> None:
        self._v_in = None
        self._layers = []

    # --- "local" ------------------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        """½ mean (ΔV)² over every resistor and −mean V at every bias source, from ngspice's node voltages."""
        self._offers("local")
        self._require_state()
        assert self._v_in is not None
        return local_gradients(self._params, self._v_in, self._layers)

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
        self._param_text = None

    def read_params(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._params.items()}

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the ngspice network has no homeostatic control knobs")

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

    def _batch(self) -> int:
        if self._v_in is None:
            raise RuntimeError("clamp an input first")
        return self._v_in.shape[0]

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

    def _offers(self, capability: str) -> None:
        if capability not in self.spec.capabilities:
            raise CapabilityError(f"this ngspice network is configured without capability {capability!r}")

    def _require_state(self) -> None:
        if self._v_in is None or not self._layers:
            raise RuntimeError("clamp and relax first")

    def _clip_conductances(self) -> None:
        lo, hi = self._g_window
        for k in range(1, self._topology.depth + 1):
            np.clip(self._params[f"g{k}"], lo, hi, out=self._params[f"g{k}"])


__all__ = ["SpiceNetwork"]
