"""Floating parameters held by control knobs: the coupling U(u, θ) = ‖u − θ‖² / (2ε) and joint relaxation.

Shared physics of every substrate whose parameters relax together with its state (docs/science.md §2). The
energies here are linear in θ, so with the state s fixed the parameters' exact minimiser is
θ* = clip(u − ε ∂E/∂θ(s), bounds) (∂E/∂θ averaged over the batch, as the batch's energy is). Alternating a
state relaxation and that exact parameter update is block coordinate descent on the joint energy: each block
lowers it, and it is bounded below, so the pair settles. Nothing here knows about learning.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
from aeqprop.simulators.core import SimulatedSystem

from aeqprop.system import CapabilityError, NotSettled, ParamSpec, RelaxReport


class ControlCoupling:
    """The knobs u and the stiffness ε of each parameter group, with the parameters' bounds."""

    def __init__(self, specs: Mapping[str, ParamSpec], eps: Mapping[str, float], dtype: np.dtype) -> None:
        self._specs = dict(specs)
        self._dtype = np.dtype(dtype)
        self.eps: dict[str, float] = {}
        self.set_eps(eps)
        self.u: dict[str, np.ndarray] = {name: np.zeros(spec.shape, dtype=self._dtype) for name, spec in specs.items()}

    def set_eps(self, eps: Mapping[str, float]) -> None:
        """Set ε per group (a positive float each; groups not named keep theirs)."""
        unknown = set(eps) - set(self._specs)
        if unknown:
            raise KeyError(f"coupling: unknown parameter groups {sorted(unknown)}; known: {sorted(self._specs)}")
        for name, value in eps.items():
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"coupling {name}: eps must be a positive number, got {value!r}")
            self.eps[name] = float(value)
        missing = set(self._specs) - set(self.eps)
        if missing:
            raise ValueError(f"coupling: no eps for parameter groups {sorted(missing)}")

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        """Replace the knobs named in ``u`` (shapes as the parameters')."""
        for name, value in u.items():
            if name not in self._specs:
                raise KeyError(f"set_controls: unknown parameter {name!r}; known: {sorted(self._specs)}")
            value = np.asarray(value, dtype=self._dtype)
            if value.shape != self._specs[name].shape:
                raise ValueError(f"set_controls {name}: expected shape {self._specs[name].shape}, got {value.shape}")
            if not np.all(np.isfinite(value)):
                raise ValueError(f"set_controls {name}: knobs must be finite")
            self.u[name] = value.copy()

    def minimiser(self, name: str, dE_dtheta: np.ndarray) -> np.ndarray:
        """Exact θ* = clip(u − ε ∂E/∂θ, bounds) for one group, given the batch-mean ∂E/∂θ at the present state."""
        theta = self.u[name] - self.eps[name] * dE_dtheta
        lo, hi = self._specs[name].bounds
        if lo is not None or hi is not None:
            np.clip(theta, lo, hi, out=theta)
        return theta.astype(self._dtype, copy=False)


def relax_jointly(
    relax_state: Callable[[], RelaxReport],
    dE_dtheta: Callable[[], dict[str, np.ndarray]],
    params: dict[str, np.ndarray],
    coupling: ControlCoupling,
    on_params_changed: Callable[[], None],
    tol_param: float,
    max_rounds: int,
) -> RelaxReport:
    """Alternate state relaxation and the exact parameter update until θ moves less than ``tol_param``.

    ``params`` is updated in place; ``on_params_changed`` lets the substrate drop cached coefficients.
    Returns the total sweeps and the last parameter change; raises :class:`NotSettled` after ``max_rounds``.
    """
    sweeps = 0
    change = np.inf
    for _ in range(max_rounds):
        sweeps += relax_state().sweeps
        grads = dE_dtheta()
        change = 0.0
        for name, grad in grads.items():
            new = coupling.minimiser(name, grad)
            if new.size:
                change = max(change, float(np.max(np.abs(new - params[name]))))
            params[name] = new
        on_params_changed()
        if not np.isfinite(change):
            break
        if change <= tol_param:
            final = relax_state()
            return RelaxReport(sweeps=sweeps + final.sweeps, residual=max(change, final.residual))
    raise NotSettled(
        f"parameters did not settle with the state in {max_rounds} rounds (last change {change:.3g} > "
        f"tolerance {tol_param:.3g}): the coupling eps may be too large for a stable joint equilibrium"
    )


def relax_interleaved(
    sweep: Callable[[], float],
    dE_dtheta: Callable[[], dict[str, np.ndarray]],
    params: dict[str, np.ndarray],
    coupling: ControlCoupling,
    tol_state: float,
    tol_param: float,
    max_sweeps: int,
) -> RelaxReport:
    """One state sweep, then the exact parameter update, repeated until both moved less than their tolerances.

    Cheaper than :func:`relax_jointly` where the state converges slowly: the state is never re-converged for a
    parameter value that is about to change. ``sweep`` returns the largest state change it made.
    """
    residual = change = np.inf
    for count in range(1, max_sweeps + 1):
        residual = sweep()
        change = 0.0
        for name, grad in dE_dtheta().items():
            new = coupling.minimiser(name, grad)
            if new.size:
                change = max(change, float(np.max(np.abs(new - params[name]))))
            params[name] = new
        if not (np.isfinite(residual) and np.isfinite(change)):
            break
        if residual <= tol_state and change <= tol_param:
            return RelaxReport(sweeps=count, residual=max(residual, change))
    raise NotSettled(
        f"state and parameters did not settle in {max_sweeps} sweeps (last state change {residual:.3g}, "
        f"parameter change {change:.3g}; tolerances {tol_state:.3g}, {tol_param:.3g}): the coupling eps may be "
        "too large for a stable joint equilibrium"
    )


class FloatingParameters(SimulatedSystem):
    """The contract operations every floating-parameter substrate shares: knobs, ε, parameter reads, snapshots.

    A substrate is a :class:`~aeqprop.simulators.core.SimulatedSystem` that also sets ``_coupling``
    (:class:`ControlCoupling`). Its parameters are held by knobs, so ``program`` and ``read_local`` refuse.
    """

    CAPABILITIES = frozenset({"homeostatic"})
    _coupling: ControlCoupling
    #: σ of one parameter read-back (parameter units; 0 = exact reads) and the generator drawing its noise.
    read_noise: float = 0.0
    _noise_rng: np.random.Generator | None = None

    def set_read_noise(self, sigma: float, seed: int = 0) -> None:
        """Make every read-back θ + N(0, σ²) per parameter (what an ADC does); averaging N reads gives σ/√N."""
        if sigma < 0:
            raise ValueError(f"read noise must be >= 0, got {sigma}")
        self.read_noise = float(sigma)
        self._noise_rng = np.random.default_rng(seed)

    def read_params(self, reads: int = 1) -> dict[str, np.ndarray]:
        if reads < 1:
            raise ValueError(f"read_params: reads must be >= 1, got {reads}")
        if not self.read_noise or self._noise_rng is None:
            return {k: v.copy() for k, v in self._params.items()}
        scale = self.read_noise / np.sqrt(reads)  # the mean of N independent Gaussian reads
        rng = self._noise_rng
        return {k: v + scale * rng.standard_normal(v.shape).astype(v.dtype) for k, v in self._params.items()}

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        self._coupling.set_controls(u)

    def set_coupling(self, eps: Mapping[str, float]) -> None:
        self._coupling.set_eps(eps)

    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError(f"the {self.NAME}'s parameters are held by knobs, not programmed")

    def snapshot(self) -> dict[str, np.ndarray]:
        snap = super().snapshot()
        snap.update({f"control.{k}": v.copy() for k, v in self._coupling.u.items()})
        snap.update({f"eps.{k}": np.array(v) for k, v in self._coupling.eps.items()})
        # keep the historical key order: parameters, controls, eps, state
        order = [k for k in snap if k.startswith("param.")] + [k for k in snap if k.startswith(("control.", "eps."))]
        return {k: snap[k] for k in order + [k for k in snap if k.startswith("state.")]}

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        super().restore(snapshot)
        self._coupling.set_controls({name: snapshot[f"control.{name}"] for name in self._params})
        self._coupling.set_eps({name: float(snapshot[f"eps.{name}"]) for name in self._params})


__all__ = ["ControlCoupling", "FloatingParameters", "relax_interleaved", "relax_jointly"]
