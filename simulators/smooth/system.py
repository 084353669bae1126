"""The smooth layered network behind the contract: ``local``, ``program``, ``complex`` (tied only)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
from aeqprop.simulators.core import SimulatedSystem, own_params, param_specs

from aeqprop.system import RelaxReport, nudge_target

from .network import local_products, param_names, relax_fixed_point


class SmoothNetwork(SimulatedSystem):
    """A layered tanh network relaxed by exact fixed-point sweeps, batched, warm-started between calls.

    Complex nudges (capability ``complex``) make the state complex; the next real nudge drops the imaginary
    part again. ``read_noise`` adds Gaussian noise of that standard deviation to every local reading (per
    read; ``reads`` repeated reads are averaged), drawn from the system's own generator.
    """

    CAPABILITIES = frozenset({"local", "program", "complex"})
    NAME = "smooth network"

    def __init__(
        self,
        sizes: tuple[int, ...],
        params: Mapping[str, np.ndarray],
        *,
        tied: bool = True,
        tol: float = 1e-10,
        max_sweeps: int = 10_000,
        damping: float = 1.0,
        read_noise: float = 0.0,
        rng: np.random.Generator | None = None,
        capabilities: frozenset[str] | None = None,
    ) -> None:
        self.sizes = tuple(sizes)
        self.tied = tied
        depth = len(sizes) - 1
        self._dtype = np.dtype(np.float64)
        self._params = own_params(params, param_names(depth, tied), np.float64)
        self._tol, self._max_sweeps, self._damping = tol, max_sweeps, damping
        self._read_noise = read_noise
        self._rng = rng if rng is not None else np.random.default_rng(0)
        self.spec = self._make_spec(
            sizes[0], sizes[-1], param_specs(self._params, layer_shift={"v": -1}), capabilities,
            f"{'tied' if tied else 'untied'} smooth network {'-'.join(map(str, sizes))}",
        )
        self._reset_state()

    # --- contract: all systems (clamp, read_outputs, close: SimulatedSystem) ---------------------------------
    def nudge(self, beta: complex, target: np.ndarray | None = None) -> None:
        if np.iscomplexobj(beta) and complex(beta).imag != 0:
            self._offers("complex")
            self._beta = complex(beta)
        else:
            self._beta = float(np.real(beta))
            self._layers = [np.ascontiguousarray(s.real) for s in self._layers]
        self._target = nudge_target(
            self._beta, target, self._target, self._batch, self.spec.n_outputs, np.float64
        )

    def relax(self) -> RelaxReport:
        x = self._require_input("relax")
        if isinstance(self._beta, complex):
            self._layers = [s.astype(np.complex128) for s in self._layers]
        return relax_fixed_point(self._params, x, self._layers, self._beta, self._target,
                                 self._tol, self._max_sweeps, self._damping)

    def snapshot(self) -> dict[str, np.ndarray]:
        snap = super().snapshot()
        snap["rng"] = np.array(json.dumps(self._rng.bit_generator.state))
        return snap

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        super().restore(snapshot)
        if "rng" in snapshot:
            self._rng.bit_generator.state = json.loads(str(snapshot["rng"]))

    # --- helpers ------------------------------------------------------------------------------------------
    def _state_sizes(self) -> list[int]:
        return list(self.sizes[1:])

    def _local(self, reads: int) -> dict[str, np.ndarray]:
        local = local_products(self._params, self._x, self._layers, self._held())
        if self._read_noise > 0:
            sigma = self._read_noise / np.sqrt(reads)
            for name, value in local.items():
                noise = self._rng.normal(0.0, sigma, size=value.shape)
                if np.iscomplexobj(value):
                    noise = noise + 1j * self._rng.normal(0.0, sigma, size=value.shape)
                local[name] = value + noise
        return local

    def _held(self) -> list[np.ndarray] | None:
        """Pre-synaptic activity the local reads use (None: the present state; tied networks)."""
        return None


__all__ = ["SmoothNetwork"]
