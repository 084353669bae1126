"""A layered Hopfield network whose weights and biases float, behind the contract (capability ``homeostatic``).

The parameters are physical degrees of freedom: each is held by a control knob u through a coupling
‖u − θ‖²/(2ε) (ε per parameter group) and relaxes together with the units. The system offers clamp, nudge,
relax, read_outputs, read_params and set_controls, and deliberately no ``read_local``: a controller training
it must do so without measuring or computing ∂E/∂θ.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aeqprop.system import CapabilityError, ParamSpec, RelaxReport, SystemSpec, nudge_target
from aeqprop.simulators.coupling import ControlCoupling, FloatingParameters

from .floating import relax_floating
from .network import Topology, param_names
from .solver import check_nudge


class FloatingHopfield(FloatingParameters):
    """Layered hard-sigmoid Hopfield network; (s, θ) relax jointly given the knobs u, batched, warm-started."""

    CAPABILITIES = frozenset({"homeostatic"})

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
        names = param_names(topology.depth)
        missing = set(names) - set(params)
        if missing:
            raise ValueError(f"missing parameters {sorted(missing)}")
        self._params = {name: np.array(params[name], dtype=self._dtype) for name in names}
        specs = {}
        for k in range(1, topology.depth + 1):
            specs[f"w{k}"] = ParamSpec(self._params[f"w{k}"].shape, (None, None), "", k)
        for k in range(1, topology.depth + 1):
            specs[f"b{k}"] = ParamSpec(self._params[f"b{k}"].shape, (None, None), "", k, "bias")
        self.spec = SystemSpec(
            n_inputs=topology.sizes[0],
            n_outputs=topology.sizes[-1],
            params=specs,
            capabilities=self.CAPABILITIES,
            description=f"floating-parameter Hopfield network {'-'.join(map(str, topology.sizes))}",
        )
        self._coupling = ControlCoupling(specs, eps, self._dtype)
        self._coupling.set_controls(self._params)  # knobs start where the parameters are
        self._tol = tol
        self._tol_param = tol_param
        self._max_sweeps = max_sweeps
        self._x: np.ndarray | None = None
        self._layers: list[np.ndarray] = []
        self._beta = 0.0
        self._target: np.ndarray | None = None

    # --- contract: all systems ----------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=self._dtype)
        if x.ndim != 2 or x.shape[1] != self.spec.n_inputs:
            raise ValueError(f"clamp: expected shape (batch, {self.spec.n_inputs}), got {x.shape}")
        self._x = x
        if not self._layers or self._layers[0].shape[0] != x.shape[0]:
            self._layers = [np.zeros((x.shape[0], n), dtype=self._dtype) for n in self._topology.sizes[1:]]
            self._target = None

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        self._beta = float(beta)
        self._target = nudge_target(
            self._beta, target, self._target, self._batch, self.spec.n_outputs, self._dtype
        )

    def relax(self) -> RelaxReport:
        """Let units and parameters settle together under the present clamp, nudge and knobs.

        Same iterates as alternating a sweep with the exact parameter update, with θ applied through batch Gram
        matrices between sweeps (:mod:`.floating`) so that a sweep costs no parameter-sized array work.
        """
        if self._x is None:
            raise RuntimeError("relax: clamp an input first")
        check_nudge(self._beta, self._target)
        return relax_floating(
            self._params, self._coupling, self._x, self._layers, self._beta, self._target,
            self._tol, self._tol_param, self._max_sweeps,
        )

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        if self._x is None or not self._layers:
            raise RuntimeError("clamp and relax first")
        return self._layers[-1].copy()

    def close(self) -> None:
        self._x = None

    # --- "homeostatic": set_controls, set_coupling, read_params, snapshot, restore come from FloatingParameters
    # --- what this system deliberately does not offer ---------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        raise CapabilityError("the floating Hopfield network cannot measure dE/dtheta (no 'local' capability)")

    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the floating Hopfield network's parameters are held by knobs, not programmed")

    # --- helpers ------------------------------------------------------------------------------------------
    @property
    def topology(self) -> Topology:
        return self._topology

    def _batch(self) -> int:
        if self._x is None:
            raise RuntimeError("clamp an input first")
        return self._x.shape[0]


__all__ = ["FloatingHopfield"]
