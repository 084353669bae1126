"""Default homeostat settings on a system nobody tuned for: floating parameters with their own physical stops.

``StoppedNet`` stands for a system written outside this repository. Its weights float between hard stops at
±0.3 and its biases saturate softly (0.2·tanh), neither declared in its ParamSpec: the controller can learn of
them only by measuring that a knob no longer moves its parameter. A weak soft stop (response ≪ 1/16) used to
stall the loop at the old knob-gain cap; a hard stop used to wind its knob up forever.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from aeqprop.agnostic import AgnosticEP, Homeostat, StabilityGuard
from aeqprop.system import ParamSpec, RelaxReport, SystemSpec

W_STOP = 0.3
B_SAT = 0.2


class StoppedNet:
    """s = clip(xW + b, 0, 1); θ relaxes to stop(u + ε ∂(xᵀWs + bᵀs)/∂θ), alternating exact block minimisations."""

    def __init__(self, n_in: int, n_out: int, eps: float, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        self.theta = {"W": rng.uniform(-0.25, 0.25, (n_in, n_out)), "b": rng.uniform(-0.05, 0.05, n_out)}
        self.u = {k: v.copy() for k, v in self.theta.items()}
        self.eps = {"W": eps, "b": eps}
        self.spec = SystemSpec(
            n_inputs=n_in, n_outputs=n_out,
            params={"W": ParamSpec((n_in, n_out)), "b": ParamSpec((n_out,), role="bias")},
            capabilities=frozenset({"homeostatic"}),
        )
        self.x = self.s = self.y = None
        self.beta = 0.0

    def clamp(self, x): self.x = np.asarray(x, float)
    def nudge(self, beta, target=None):
        self.beta = float(beta)
        self.y = self.y if target is None else np.asarray(target, float)
    def read_outputs(self, reads=1): return self.s.copy()
    def read_params(self): return {k: v.copy() for k, v in self.theta.items()}
    def set_controls(self, u: Mapping[str, np.ndarray]): self.u = {k: np.array(v, float) for k, v in u.items()}
    def set_coupling(self, eps: Mapping[str, float]): self.eps = {k: float(v) for k, v in eps.items()}
    def snapshot(self): return {}
    def restore(self, snap): pass
    def close(self): pass

    def relax(self) -> RelaxReport:
        for rounds in range(1, 100_000):
            h = self.x @ self.theta["W"] + self.theta["b"]
            if self.beta:
                h = (h + self.beta * self.y) / (1 + self.beta)
            self.s = np.clip(h, 0, 1)
            raw_w = self.u["W"] + self.eps["W"] * self.x.T @ self.s / len(self.x)
            raw_b = self.u["b"] + self.eps["b"] * self.s.mean(axis=0)
            new = {"W": np.clip(raw_w, -W_STOP, W_STOP), "b": B_SAT * np.tanh(raw_b / B_SAT)}
            change = max(np.max(np.abs(new[k] - self.theta[k])) for k in new)
            self.theta = new
            if change < 1e-12:
                return RelaxReport(sweeps=rounds, residual=change)
        raise AssertionError("toy did not settle")


def test_default_homeostat_trains_a_system_with_its_own_stops() -> None:
    """32 epochs with default homeostat settings at an ε chosen without looking (0.2: ε·λ reaches ≈ 0.95,
    measured): no NotHeld, ε lowered by the guard from the measured response, knobs on the hard stops reported
    (and not wound up), and the task is learned (chance is 1/3)."""
    rng = np.random.default_rng(5)
    x = rng.uniform(0, 1, (96, 6))
    labels = np.argmax(x[:, :3] - x[:, 3:], axis=1)
    y = np.eye(3)[labels]
    net = StoppedNet(6, 3, eps=0.2)
    rule = AgnosticEP("centered", 1.0, Homeostat(), eps={"W": 0.2, "b": 0.2}, guard=StabilityGuard())
    stops_seen = reductions = 0
    for _ in range(32):
        for b in range(0, 96, 8):
            rule.train_step(net, x[b : b + 8], y[b : b + 8])
            stops_seen = max(stops_seen, rule.last_hold.stopped.get("W", 0))
        metrics = rule.epoch_metrics()
        reductions += sum(metrics["eps_reductions"].values())
        rule.end_epoch()
    assert reductions > 0  # the guard lowered ε from the measured response at some point
    at_stop = np.isclose(np.abs(net.theta["W"]), W_STOP)
    assert stops_seen > 0 and np.any(at_stop)
    assert np.all(np.abs(rule.controls["W"]) < 10 * W_STOP)  # no knob wound up against its stop
    accuracy = np.mean(np.argmax(rule.predict(net, x), axis=1) == labels)
    assert accuracy >= 0.7  # measured 0.80 after 30 epochs; 0.49 after the first
