"""The smooth layered network behind the contract: ``local``, ``program``, ``complex`` (tied only)."""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np

from aeqprop.system import CapabilityError, ParamSpec, RelaxReport, SystemSpec, nudge_target

from .network import local_products, param_names, relax_fixed_point


class SmoothNetwork:
    """A layered tanh network relaxed by exact fixed-point sweeps, batched, warm-started between calls.

    Complex nudges (capability ``complex``) make the state complex; the next real nudge drops the imaginary
    part again. ``read_noise`` adds Gaussian noise of that standard deviation to every local reading (per
    read; ``reads`` repeated reads are averaged), drawn from the system's own generator.
    """

    CAPABILITIES = frozenset({"local", "program", "complex"})

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
        names = param_names(depth, tied)
        missing = set(names) - set(params)
        if missing:
            raise ValueError(f"missing parameters {sorted(missing)}")
        self._params = {n: np.array(params[n], dtype=np.float64) for n in names}
        self._tol, self._max_sweeps, self._damping = tol, max_sweeps, damping
        self._read_noise = read_noise
        self._rng = rng if rng is not None else np.random.default_rng(0)
        spec_params = {}
        for name, value in self._params.items():
            layer = int(name[1:]) if name[0] != "v" else int(name[1:]) - 1
            role = "bias" if name[0] == "b" else "weight"
            spec_params[name] = ParamSpec(value.shape, (None, None), "", layer, role)
        self.spec = SystemSpec(
            n_inputs=sizes[0], n_outputs=sizes[-1], params=spec_params,
            capabilities=self.CAPABILITIES if capabilities is None else frozenset(capabilities),
            description=f"{'tied' if tied else 'untied'} smooth network {'-'.join(map(str, sizes))}",
        )
        self._x: np.ndarray | None = None
        self._layers: list[np.ndarray] = []
        self._beta: complex = 0.0
        self._target: np.ndarray | None = None

    # --- contract: all systems ----------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.spec.n_inputs:
            raise ValueError(f"clamp: expected shape (batch, {self.spec.n_inputs}), got {x.shape}")
        self._x = x
        if not self._layers or self._layers[0].shape[0] != x.shape[0]:
            self._layers = [np.zeros((x.shape[0], n)) for n in self.sizes[1:]]
            self._target = None

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
        if self._x is None:
            raise RuntimeError("relax: clamp an input first")
        if isinstance(self._beta, complex):
            self._layers = [s.astype(np.complex128) for s in self._layers]
        return relax_fixed_point(self._params, self._x, self._layers, self._beta, self._target,
                                 self._tol, self._max_sweeps, self._damping)

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        self._require_state()
        return np.ascontiguousarray(self._layers[-1].real)

    def snapshot(self) -> dict[str, np.ndarray]:
        snap = {f"param.{k}": v.copy() for k, v in self._params.items()}
        snap.update({f"state.{i}": v.real.copy() for i, v in enumerate(self._layers)})
        snap["rng"] = np.array(json.dumps(self._rng.bit_generator.state))
        return snap

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        for name in self._params:
            self._params[name] = np.array(snapshot[f"param.{name}"], dtype=np.float64)
        self._layers = [np.array(snapshot[f"state.{i}"]) for i in range(len(self.sizes) - 1) if f"state.{i}" in snapshot]
        if "rng" in snapshot:
            self._rng.bit_generator.state = json.loads(str(snapshot["rng"]))

    def close(self) -> None:
        self._x = None

    # --- "local" ------------------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        self._offers("local")
        self._require_state()
        local = local_products(self._params, self._x, self._layers, self._held())
        if self._read_noise > 0:
            sigma = self._read_noise / np.sqrt(reads)
            for name, value in local.items():
                noise = self._rng.normal(0.0, sigma, size=value.shape)
                if np.iscomplexobj(value):
                    noise = noise + 1j * self._rng.normal(0.0, sigma, size=value.shape)
                local[name] = value + noise
        return local

    # --- "program" ----------------------------------------------------------------------------------------
    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        self._offers("program")
        for name, step in delta.items():
            if name not in self._params:
                raise KeyError(f"program: unknown parameter {name!r}; known: {sorted(self._params)}")
            if np.shape(step) != self._params[name].shape:
                raise ValueError(f"program {name}: expected shape {self._params[name].shape}, got {np.shape(step)}")
            self._params[name] += np.real(step)

    def read_params(self) -> dict[str, np.ndarray]:
        return {k: v.copy() for k, v in self._params.items()}

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the smooth network has no homeostatic control knobs")

    # --- helpers ------------------------------------------------------------------------------------------
    def _held(self) -> list[np.ndarray] | None:
        """Pre-synaptic activity the local reads use (None: the present state; tied networks)."""
        return None

    def _batch(self) -> int:
        if self._x is None:
            raise RuntimeError("clamp an input first")
        return self._x.shape[0]

    def _offers(self, capability: str) -> None:
        if capability not in self.spec.capabilities:
            raise CapabilityError(f"this system is configured without capability {capability!r}")

    def _require_state(self) -> None:
        if self._x is None or not self._layers:
            raise RuntimeError("clamp and relax first")


__all__ = ["SmoothNetwork"]
