"""An untied layered network behind the contract: ``local`` (generalized EP reads), ``program``, ``perturb``.

Forward couplings ``w{k}`` and backward couplings ``v{k}`` are separate devices, so the dynamics are a vector
field with no energy (``aeqprop.simulators.smooth.network``). Each device's local measurement multiplies its
post-synaptic activity now by its pre-synaptic activity held at the last free equilibrium (sample-and-hold),
so the difference of two nudged readings is the generalized EP update −s⁰_pre ⊗ ds_post/dβ.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from aeqprop.simulators.smooth.network import vector_field
from aeqprop.simulators.smooth.system import SmoothNetwork

from aeqprop.system import RelaxReport


class AsymmetricNetwork(SmoothNetwork):
    """Untied smooth network; ``perturb`` kicks the free state and lets it respond for ``probe_time``."""

    CAPABILITIES = frozenset({"local", "program", "perturb"})

    def __init__(self, sizes: tuple[int, ...], params: Mapping[str, np.ndarray], *, probe_time: float = 0.1,
                 **kw) -> None:
        super().__init__(sizes, params, tied=False, **kw)
        if probe_time <= 0:
            raise ValueError(f"probe_time must be positive, got {probe_time}")
        self._probe_time = probe_time
        self._free: list[np.ndarray] | None = None

    def relax(self) -> RelaxReport:
        report = super().relax()
        if self._beta == 0:
            self._free = [s.copy() for s in self._layers]
        return report

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        super().restore(snapshot)
        self._free = None

    # --- "perturb" ----------------------------------------------------------------------------------------
    def perturb(self, kick: np.ndarray) -> None:
        """State ← free + kick, then one explicit step of length ``probe_time`` of ds/dt = F(s)."""
        self._offers("perturb")
        if self._free is None or self._x is None:
            raise RuntimeError("perturb: relax with no nudge first (kicks start from the free equilibrium)")
        kick = np.asarray(kick, dtype=np.float64)
        n_state = sum(self.sizes[1:])
        if kick.shape != (self._x.shape[0], n_state):
            raise ValueError(f"perturb: expected kick shape {(self._x.shape[0], n_state)}, got {kick.shape}")
        layers, start = [], 0
        for s in self._free:
            layers.append(s + kick[:, start:start + s.shape[1]])
            start += s.shape[1]
        field = vector_field(self._params, self._x, layers, 0.0, None)
        self._layers = [s + self._probe_time * f for s, f in zip(layers, field)]

    def read_state(self) -> np.ndarray:
        self._offers("perturb")
        self._require_state()
        return np.concatenate([np.real(s) for s in self._layers], axis=1)

    def _held(self) -> list[np.ndarray] | None:
        if self._free is None:
            raise RuntimeError("read_local: relax with no nudge first (devices hold the free activity)")
        return self._free


__all__ = ["AsymmetricNetwork"]
