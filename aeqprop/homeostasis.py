"""Jacobian homeostasis (Laborieux & Zenke 2024) measured by perturbation only.

EP's error signal is J⁻¹∂L/∂s where backprop's is J⁻ᵀ∂L/∂s (J = ∂F/∂s, the Jacobian of the dynamics at the
free fixed point); they agree when J is symmetric. Homeostasis adds λ·∇θ ½‖J − Jᵀ‖²_F to the update.

The controller never sees J. It measures the penalty from state kicks: with random probes ε, η and the
response r(u) of the state to a kick κu (``perturb`` then ``read_state``; antithetic kicks ±κu cancel the
even orders), a = ηᵀr(ε) − εᵀr(η) ∝ ηᵀ(J − Jᵀ)ε, and E[a²] = ‖J − Jᵀ‖²_F for Gaussian probes. Its gradient
in θ is then measured by simultaneous perturbation (SPSA, Spall 1992): program θ ± δΔ with a random sign
vector Δ over the chosen parameter groups, measure the penalty at both (same probes), and use
(P₊ − P₋)/(2δ)·Δ, an unbiased estimate of the gradient up to O(δ²). Only clamp, nudge, relax, program,
perturb and read_state are used: no layout, no formula of the system.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .system import PhysicalSystem, SystemSpec


class JacobianHomeostasis:
    """λ·∇θ ½‖J − Jᵀ‖²_F over ``params`` (default: every weight group), estimated from kicks and SPSA.

    Each penalty measurement uses ``kicks`` independent probe pairs (the batch's inputs tiled, where the
    system takes batches); each step averages ``probes`` parameter directions. The estimate's noise grows
    with the number of parameters trimmed, so name only the couplings that can be mismatched.
    """

    requires = frozenset({"perturb", "program"})

    def __init__(
        self,
        spec: SystemSpec,
        weight: float,
        params: Sequence[str] | None = None,
        probes: int = 2,
        step: float = 1e-3,
        kick: float = 1e-4,
        kicks: int = 32,
    ) -> None:
        names = [n for n, p in spec.params.items() if p.role == "weight"] if params is None else list(params)
        unknown = set(names) - set(spec.params)
        if unknown:
            raise ValueError(f"homeostasis: unknown parameter groups {sorted(unknown)}; known: {sorted(spec.params)}")
        if weight < 0 or probes < 1 or step <= 0 or kick <= 0 or kicks < 1:
            raise ValueError("homeostasis needs weight >= 0, probes >= 1, step > 0, kick > 0 and kicks >= 1")
        self.names = names
        self.shapes = {n: spec.params[n].shape for n in names}
        self.weight = weight
        self.probes = probes
        self.step = step
        self.kick = kick
        self.kicks = kicks

    def _response(self, system: PhysicalSystem, u: np.ndarray) -> np.ndarray:
        """Antithetic response to kicks ±κu, divided by 2κ: ≈ τ·J·u (τ the system's probe time)."""
        system.perturb(self.kick * u)  # type: ignore[attr-defined]
        plus = system.read_state()  # type: ignore[attr-defined]
        system.perturb(-self.kick * u)  # type: ignore[attr-defined]
        minus = system.read_state()  # type: ignore[attr-defined]
        return (plus - minus) / (2 * self.kick) - u

    def penalty(self, system: PhysicalSystem, eps: np.ndarray, eta: np.ndarray) -> float:
        """½·mean over the batch of (ηᵀr(ε) − εᵀr(η))², measured at the present parameters' free equilibrium."""
        system.nudge(0.0)
        system.relax()
        a = np.sum(eta * self._response(system, eps), axis=1) - np.sum(eps * self._response(system, eta), axis=1)
        return 0.5 * float(np.mean(a**2))

    def gradient(self, system: PhysicalSystem, x: np.ndarray, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """λ × SPSA estimate of ∇θ penalty, averaged over ``probes`` directions; parameters are left as found."""
        repeats = -(-self.kicks // x.shape[0])  # kick pairs per measurement: the batch, tiled
        cap = system.spec.max_batch
        probe_x = np.tile(x, (repeats, 1))[: max(self.kicks, x.shape[0]) if cap is None else min(cap, x.shape[0])]
        system.clamp(probe_x)
        system.nudge(0.0)
        system.relax()
        shape = system.read_state().shape  # type: ignore[attr-defined]
        total = {n: np.zeros(s) for n, s in self.shapes.items()}
        for _ in range(self.probes):
            eps, eta = rng.standard_normal(shape), rng.standard_normal(shape)
            signs = {n: rng.choice((-1.0, 1.0), size=s) for n, s in self.shapes.items()}
            system.program({n: self.step * d for n, d in signs.items()})
            p_plus = self.penalty(system, eps, eta)
            system.program({n: -2 * self.step * d for n, d in signs.items()})
            p_minus = self.penalty(system, eps, eta)
            system.program({n: self.step * d for n, d in signs.items()})
            slope = (p_plus - p_minus) / (2 * self.step)
            for n, d in signs.items():
                total[n] += (self.weight * slope / self.probes) * d
        return total


__all__ = ["JacobianHomeostasis"]
