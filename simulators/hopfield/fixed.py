"""The layered Hopfield network with fixed parameters, behind the contract (capabilities ``local``, ``program``).

The same network, energy and exact solver as :class:`~aeqprop.simulators.hopfield.FloatingHopfield`, but its
weights and biases are programmed values that do not move with the units: this is the network classic EP
trains (measure ∂E/∂θ at two equilibria, program the increments), so that Aeqprop and classic EP can be
compared on one network. The local measurement is ∂E/∂θ at the present state, batch mean: −mean s_{k−1}s_kᵀ
for a weight, −mean s_k for a bias.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from aeqprop.simulators.core import SimulatedSystem, own_params, param_specs

from aeqprop.system import RelaxReport

from .network import Topology, energy_gradients, param_names
from .solver import block_coordinate_descent


class HopfieldNetwork(SimulatedSystem):
    """Layered hard-sigmoid Hopfield network with programmed parameters, batched, warm-started between calls."""

    CAPABILITIES = frozenset({"local", "program"})
    NAME = "Hopfield network"

    def __init__(
        self,
        topology: Topology,
        params: Mapping[str, np.ndarray],
        *,
        tol: float = 1e-7,
        max_sweeps: int = 10_000,
        dtype: str = "float64",
        capabilities: frozenset[str] | None = None,
    ) -> None:
        self._topology = topology
        self._dtype = np.dtype(dtype)
        self._params = own_params(params, param_names(topology.depth), self._dtype)
        self.spec = self._make_spec(
            topology.sizes[0], topology.sizes[-1], param_specs(self._params), capabilities,
            f"Hopfield network {'-'.join(map(str, topology.sizes))}",
        )
        self._tol = tol
        self._max_sweeps = max_sweeps
        self._reset_state()

    # --- contract: all systems (clamp, nudge, read_outputs, snapshot, restore, program: SimulatedSystem) ----
    def relax(self) -> RelaxReport:
        """Relax the units to a minimum of E + β/2‖s_L − y‖² with the parameters held fixed."""
        x = self._require_input("relax")
        return block_coordinate_descent(self._params, x, self._layers, self._beta, self._target,
                                        self._tol, self._max_sweeps)

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    def _state_sizes(self) -> list[int]:
        return list(self._topology.sizes[1:])

    def _local(self, reads: int) -> dict[str, np.ndarray]:
        return energy_gradients(self._require_input("read_local"), self._layers)


__all__ = ["HopfieldNetwork"]
