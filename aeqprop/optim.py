"""Optimizers turn a gradient estimate into the parameter increments requested from the system."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .system import ParamSpec


def layer_rates(rates: float | list[float], depth: int, what: str) -> list[float]:
    """Expand a scalar or per-layer list of learning rates to one rate per layer (1..depth)."""
    if isinstance(rates, (int, float)):
        return [float(rates)] * depth
    if len(rates) != depth:
        raise ValueError(f"{what}: expected one learning rate per layer ({depth}), got {len(rates)}")
    return [float(r) for r in rates]


class SGD:
    """SGD with a learning rate per parameter group, multiplicative decay per epoch and optional momentum.

    θ ← θ − η_k · estimate, with η_k the rate of the parameter's layer (``ParamSpec.layer``); biases may use
    their own per-layer rates. After each epoch every rate is multiplied by ``decay``.

    With ``momentum`` m > 0 the step follows PyTorch's ``torch.optim.SGD`` (no dampening), because published
    recipes are written for it: v ← m·v + g (v = g at a group's first step), θ ← θ − η·v; with ``nesterov``,
    θ ← θ − η·(g + m·v). The velocities are state: :meth:`state_dict` carries them so a resumed run continues
    exactly.
    """

    def __init__(
        self,
        params: Mapping[str, ParamSpec],
        lr: float | list[float],
        lr_bias: float | list[float] | None = None,
        decay: float = 1.0,
        momentum: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"optimizer.momentum: must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("optimizer.nesterov: needs a momentum > 0")
        depth = max(p.layer for p in params.values())
        weights = layer_rates(lr, depth, "optimizer.lr")
        biases = layer_rates(lr if lr_bias is None else lr_bias, depth, "optimizer.lr_bias")
        self._base = {
            name: (biases if spec.role == "bias" else weights)[spec.layer - 1]
            for name, spec in params.items()
        }
        self._decay = decay
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self._velocity: dict[str, np.ndarray] = {}
        self.epoch = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, value: int) -> None:
        self._epoch = value
        # −η per group, computed once per epoch rather than once per group per step
        self._negative_rates = {name: -self.rate(name) for name in self._base}

    def rate(self, name: str) -> float:
        """Current learning rate of parameter group ``name``."""
        return self._base[name] * self._decay**self._epoch

    def fused_rates(self) -> Mapping[str, float] | None:
        """−η per group when a step is exactly −η·gradient with no optimizer state (plain SGD), else ``None``.

        A rule may then let the system apply −η·estimate where it measures the estimate (capability
        ``contrast``) instead of calling :meth:`step`. Momentum keeps a velocity, so it never fuses.
        """
        return None if self.momentum else self._negative_rates

    def step(self, gradient: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Increments −η·gradient (computed in place: the estimate arrays are consumed)."""
        if self.momentum:
            self._accumulate(gradient)
        rates = self._negative_rates
        for name, value in gradient.items():
            value *= rates[name]
        return gradient

    def _accumulate(self, gradient: dict[str, np.ndarray]) -> None:
        """Fold each gradient into its velocity and replace it (in place) by the direction to step along."""
        m = self.momentum
        for name, value in gradient.items():
            velocity = self._velocity.get(name)
            if velocity is None:
                velocity = self._velocity[name] = value.copy()
            else:
                velocity *= m
                velocity += value
            if self.nesterov:
                value += m * velocity
            else:
                value[...] = velocity

    def end_epoch(self) -> None:
        self.epoch += 1

    def state_dict(self) -> dict:
        state: dict = {"epoch": self.epoch}
        if self.momentum:
            state["velocity"] = {name: v.copy() for name, v in self._velocity.items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        self.epoch = int(state["epoch"])
        self._velocity = {name: np.array(v) for name, v in state.get("velocity", {}).items()}
