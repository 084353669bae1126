"""A layered Hopfield network whose weights and biases float, behind the contract (capability ``homeostatic``).

The parameters are physical degrees of freedom: each is held by a control knob u through a coupling
‖u − θ‖²/(2ε) (ε per parameter group) and relaxes together with the units. The system offers clamp, nudge,
relax, read_outputs, read_params and set_controls, and deliberately no ``read_local``: a controller training
it must do so without measuring or computing ∂E/∂θ.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from aeqprop.simulators.core import own_params, param_specs
from aeqprop.simulators.coupling import ControlCoupling, FloatingParameters

from aeqprop.system import RelaxReport

from .floating import relax_floating
from .network import Topology, param_names
from .solver import check_nudge


class FloatingHopfield(FloatingParameters):
    """Layered hard-sigmoid Hopfield network; (s, θ) relax jointly given the knobs u, batched, warm-started."""

    NAME = "floating Hopfield network"

    def __init__(
        self,
        topology: Topology,
        params: Mapping[str, np.ndarray],
        eps: Mapping[str, float],
        *,
        tol: float = 1e-7,
        tol_param: float = 1e-9,
        max_sweeps: int = 10_000,
        dtype: str = "float64",
    ) -> None:
        self._topology = topology
        self._dtype = np.dtype(dtype)
        self._params = own_params(params, param_names(topology.depth), self._dtype)
        specs = param_specs(self._params)
        self.spec = self._make_spec(
            topology.sizes[0], topology.sizes[-1], specs, None,
            f"floating-parameter Hopfield network {'-'.join(map(str, topology.sizes))}",
        )
        self._coupling = ControlCoupling(specs, eps, self._dtype)
        self._coupling.set_controls(self._params)  # knobs start where the parameters are
        self._tol = tol
        self._tol_param = tol_param
        self._max_sweeps = max_sweeps
        self._reset_state()

    # --- contract: clamp, nudge, read_outputs, close (SimulatedSystem); knobs, snapshots (FloatingParameters)
    def relax(self) -> RelaxReport:
        """Let units and parameters settle together under the present clamp, nudge and knobs.

        Same iterates as alternating a sweep with the exact parameter update, with θ applied through batch Gram
        matrices between sweeps (:mod:`.floating`) so that a sweep costs no parameter-sized array work.
        """
        x = self._require_input("relax")
        check_nudge(self._beta, self._target)
        return relax_floating(
            self._params, self._coupling, x, self._layers, self._beta, self._target,
            self._tol, self._tol_param, self._max_sweeps,
        )

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    def _state_sizes(self) -> list[int]:
        return list(self._topology.sizes[1:])


__all__ = ["FloatingHopfield"]
