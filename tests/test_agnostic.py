"""Agnostic EP: the rule trains and steps like gradient descent on systems it knows only through the contract.

``ForeignFloatingNet`` below stands for a system written outside this repository: it imports nothing from
aeqprop but the contract's data types, and offers only clamp / nudge / relax / read_outputs / read_params /
set_controls (plus snapshot / restore / close). Its coupling ε is fixed by its construction (no set_coupling).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest

from aeqprop.agnostic import VARIANTS, AgnosticEP, Homeostat, NotHeld, group_eps, nudges
from aeqprop.system import ParamSpec, RelaxReport, SystemSpec


class ForeignFloatingNet:
    """One layer of hard-sigmoid units s = clip(xW + b) whose W and b float under ‖u − θ‖²/(2ε).

    Energy per sample E = ½‖s‖² − xᵀWs − bᵀs + β/2‖s − y‖², averaged over the batch; (s, θ) relax jointly by
    alternating exact minimisations. ``stuck`` names parameters whose knob is disconnected: they still float
    with the state but always feel the knob value they were built with (a broken control line).
    """

    def __init__(self, n_in: int, n_out: int, eps_w: float, eps_b: float, seed: int = 0,
                 stuck: tuple[tuple[str, tuple[int, ...]], ...] = ()) -> None:
        rng = np.random.default_rng(seed)
        self.theta = {"W": rng.uniform(-1, 1, (n_in, n_out)) / np.sqrt(n_in), "b": rng.uniform(-0.2, 0.2, n_out)}
        self.u = {k: v.copy() for k, v in self.theta.items()}
        self.u_built = {k: v.copy() for k, v in self.theta.items()}
        self.eps = {"W": eps_w, "b": eps_b}
        self.stuck = stuck
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
    def snapshot(self):
        return {**{f"t.{k}": v.copy() for k, v in self.theta.items()},
                **{f"u.{k}": v.copy() for k, v in self.u.items()}}
    def restore(self, snap):
        self.theta = {k: snap[f"t.{k}"].copy() for k in self.theta}
        self.u = {k: snap[f"u.{k}"].copy() for k in self.u}
    def close(self): pass

    def _states(self) -> np.ndarray:
        h = self.x @ self.theta["W"] + self.theta["b"]
        if self.beta:
            h = (h + self.beta * self.y) / (1 + self.beta)
        return np.clip(h, 0, 1)

    def relax(self) -> RelaxReport:
        for rounds in range(1, 100_000):
            self.s = self._states()
            u = {k: v.copy() for k, v in self.u.items()}
            for name, idx in self.stuck:
                u[name][idx] = self.u_built[name][idx]
            new = {"W": u["W"] + self.eps["W"] * self.x.T @ self.s / len(self.x),
                   "b": u["b"] + self.eps["b"] * self.s.mean(axis=0)}
            change = max(np.max(np.abs(new[k] - self.theta[k])) for k in new)
            self.theta = new
            if change < 1e-13:
                self.s = self._states()
                return RelaxReport(sweeps=rounds, residual=change)
        raise AssertionError("toy did not settle")


def foreign_loss_gradient(net: ForeignFloatingNet, x, y) -> dict[str, np.ndarray]:
    """True dL/dθ of L = ½ mean ‖clip(xW + b) − y‖² with θ held fixed (the oracle, closed form)."""
    h = x @ net.theta["W"] + net.theta["b"]
    delta = (np.clip(h, 0, 1) - y) * ((h > 0) & (h < 1))
    return {"W": x.T @ delta / len(x), "b": delta.mean(axis=0)}


def cosine(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> float:
    va = np.concatenate([a[k].ravel() for k in sorted(a)])
    vb = np.concatenate([b[k].ravel() for k in sorted(a)])
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def toy_batch(seed: int = 3, n: int = 16, n_in: int = 6, n_out: int = 3):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, n_in))
    labels = np.argmax(x[:, :n_out], axis=1)
    return x, np.eye(n_out)[labels]


def test_variants_set_the_two_nudges() -> None:
    assert nudges("optimistic", 0.4) == (0.0, 0.4)
    assert nudges("pessimistic", 0.4) == (-0.4, 0.0)
    assert nudges("centered", 0.4) == (-0.2, 0.2)
    with pytest.raises(ValueError, match="beta > 0"):
        nudges("centered", -0.1)


@pytest.mark.parametrize("variant", VARIANTS)
def test_drift_on_foreign_system_is_the_gradient_step(variant) -> None:
    """At small β and ε the drift is −εβ∇L: cosine ≥ 0.999 and magnitude within 2 % (closed-form oracle)."""
    x, y = toy_batch()
    eps, beta = 1e-3, 1e-3
    net = ForeignFloatingNet(6, 3, eps, eps)
    rule = AgnosticEP(variant, beta, Homeostat(tolerance=1e-13, max_iterations=50))
    grad = foreign_loss_gradient(net, x, y)
    drift = rule.step(net, x, y)
    assert rule.last_hold.iterations >= 1  # the first hold really had to move the knobs
    assert cosine(drift, {k: -v for k, v in grad.items()}) > 0.999
    ratio = np.linalg.norm(drift["W"]) / np.linalg.norm(eps * beta * grad["W"])
    assert ratio == pytest.approx(1.0, rel=0.02)


def test_foreign_system_learns() -> None:
    """Training through the contract alone lowers the true loss several-fold on a separable toy task."""
    x, y = toy_batch(n=64)
    net = ForeignFloatingNet(6, 3, 0.05, 0.05)
    rule = AgnosticEP("centered", 1.0, Homeostat(tolerance=1e-9, max_iterations=50))

    def true_loss() -> float:
        return 0.5 * float(np.mean(np.sum((np.clip(x @ net.theta["W"] + net.theta["b"], 0, 1) - y) ** 2, axis=1)))

    before = true_loss()
    for _epoch in range(30):
        for batch in range(0, 64, 16):
            rule.train_step(net, x[batch : batch + 16], y[batch : batch + 16])
    assert true_loss() < 0.5 * before
    accuracy = np.mean(np.argmax(rule.predict(net, x), axis=1) == np.argmax(y, axis=1))
    assert accuracy >= 0.7  # chance: 1/3


def test_stuck_knob_is_reported_not_pushed() -> None:
    """A parameter whose knob is disconnected does not respond to it: after ``stop_after`` dead iterations it is
    reported as resting on a stop (group and count) and no longer pushed; the other 20 knobs are held."""
    x, y = toy_batch()
    net = ForeignFloatingNet(6, 3, 0.05, 0.05, stuck=(("W", (2, 1)),))
    rule = AgnosticEP("optimistic", 0.5, Homeostat(tolerance=1e-8, max_iterations=40))
    rule.step(net, x, y)
    rule.step(net, *toy_batch(seed=11))
    assert rule.last_hold.stopped == {"W": 1}
    assert rule.last_hold.max_error <= 1e-8  # every other knob holds its parameter
    knob = rule.controls["W"][2, 1]
    for seed in (12, 13, 14):
        rule.step(net, *toy_batch(seed=seed))
    assert abs(rule.controls["W"][2, 1] - knob) < 1.0  # no wind-up of the dead knob
    assert rule.epoch_metrics()["knobs_on_stops_max"] == {"W": 1}


def test_not_held_names_groups_and_counts() -> None:
    """What truly cannot be held within the budget (responsive knobs, too few iterations) raises NotHeld with the
    failing groups and their knob counts."""
    x, y = toy_batch()
    net = ForeignFloatingNet(6, 3, 0.2, 0.2, seed=1)
    rule = AgnosticEP("centered", 0.5, Homeostat(tolerance=1e-12, max_iterations=1))
    with pytest.raises(NotHeld, match=r"homeostasis: \d+ of 21 knobs could not hold .*per group: W=\d+") as info:
        rule.step(net, x, y)
    assert set(info.value.groups) <= {"W", "b"} and info.value.groups["W"] > 0


def test_adaptive_gain_holds_where_unit_gain_diverges() -> None:
    """With strong coupling (θ responds to u by more than 2) a unit-gain loop overshoots and diverges; the
    adaptive loop, estimating the response from its own measurements, holds."""
    x, y = toy_batch()
    outcomes = {}
    for adaptive in (False, True):
        net = ForeignFloatingNet(6, 3, 0.2, 0.2, seed=1)
        rule = AgnosticEP("centered", 0.5, Homeostat(tolerance=1e-9, max_iterations=25, adaptive=adaptive))
        try:
            rule.step(net, x, y)
            rule.step(net, *toy_batch(seed=11))
            outcomes[adaptive] = rule.last_hold.iterations
        except NotHeld:
            outcomes[adaptive] = None
    assert outcomes[False] is None
    assert outcomes[True] is not None and outcomes[True] <= 25


def test_eps_needs_a_settable_coupling() -> None:
    """Asking to set ε on a system with a fixed coupling is a clear capability error, not an AttributeError."""
    from aeqprop.system import CapabilityError

    x, y = toy_batch()
    net = ForeignFloatingNet(6, 3, 0.01, 0.01)
    rule = AgnosticEP("centered", 0.5, Homeostat(), eps={"W": 0.01, "b": 0.01})
    with pytest.raises(CapabilityError, match="set_coupling"):
        rule.train_step(net, x, y)


def test_group_eps_per_layer_and_role() -> None:
    specs = {"w1": ParamSpec((2, 2), layer=1), "w2": ParamSpec((2, 2), layer=2),
             "b1": ParamSpec((2,), layer=1, role="bias"), "b2": ParamSpec((2,), layer=2, role="bias")}
    assert group_eps(specs, [0.1, 0.05], [0.02, 0.01]) == {"w1": 0.1, "w2": 0.05, "b1": 0.02, "b2": 0.01}
    with pytest.raises(ValueError, match="one learning rate per layer"):
        group_eps(specs, [0.1, 0.05, 0.01])


def test_stability_guard_follows_measured_response() -> None:
    """A probe measuring response 4 (ε·λ = 0.75 > margin 0.5) sets ε to 0.8·margin/λ̂; once λ falls (response 1)
    ε returns to the schedule. Holds' along-correction responses only raise the alarm."""
    from aeqprop.agnostic import StabilityGuard

    guard = StabilityGuard(0.5)
    schedule = {"W": 0.1}
    assert guard.observe_probe({"W": 4.0}, schedule, schedule)
    eps = {"W": schedule["W"] * guard.scale["W"]}
    assert eps["W"] * 7.5 == pytest.approx(0.4)  # λ = 0.75 / 0.1
    assert guard.epoch_log()["eps_reductions"] == {"W": 1}
    assert guard.observe({"W": 30.0}) and not guard.observe({"W": 1.5})  # ε·λ 0.97 > alarm 0.95; 0.33 is not
    guard.observe_probe({"W": 1.0}, eps, schedule)
    assert schedule["W"] * guard.scale["W"] == pytest.approx(0.1)


def test_probe_measures_the_top_response_of_each_group() -> None:
    """On the foreign system the probe's power iteration finds ε·λ_max of each group's block (oracle: the
    parameters' exact response, computed here by finite differences of the system's own relaxation)."""
    x, y = toy_batch()
    net = ForeignFloatingNet(6, 3, 0.2, 0.2, seed=1)
    rule = AgnosticEP("centered", 0.5, Homeostat(tolerance=1e-10, max_iterations=100))
    rule.step(net, x, y)
    net.clamp(x)
    net.nudge(0.0)
    net.relax()
    u = {k: v.copy() for k, v in rule.controls.items()}
    responses, relaxations, _ = rule.homeostat.probe(net, u, iterations=30)
    for name in ("W", "b"):  # the exact block of dθ/du by finite differences, its largest eigenvalue
        base = net.read_params()[name].ravel()
        cols = []
        for i in range(base.size):
            uu = {k: v.copy() for k, v in u.items()}
            uu[name].ravel()[i] += 1e-6
            net.set_controls(uu)
            net.relax()
            cols.append((net.read_params()[name].ravel() - base) / 1e-6)
        net.set_controls(u)
        net.relax()
        top = max(abs(np.linalg.eigvals(np.array(cols).T)))
        assert responses[name] == pytest.approx(top, rel=0.02), name
    assert relaxations == 61 + 62  # 30 per group, 62 jointly, one to return


def test_probe_finds_the_top_response_of_a_large_group_in_three_iterations() -> None:
    """A group of 32,768 floating conductances (digits-size resistive network, 40 V, a quarter of its knobs
    resting on their stop at 0): power iteration on the response R itself gains only R's top/bulk ratio per step
    and read ε·λ = 0.007 after 3 iterations where it is 0.33; iterating on the excess response (R − I) over the
    responding knobs reads within 20 % of the 30-iteration figure (0.30 vs 0.36) already after 3."""
    from aeqprop.simulators.resistive import FloatingResistiveConfig

    from aeqprop.data import load_digits

    cfg = FloatingResistiveConfig(inputs=64, hidden=[256], outputs=10, input_gain=40.0, init_abs=True, tol_v=1e-9,
                                  tol_param=1e-11, max_rounds=20_000)
    net = cfg.build(np.random.default_rng(0))
    net.set_coupling({name: 5e-5 for name in net.spec.params})
    homeostat = Homeostat(tolerance=1e-9, max_iterations=200)
    u = {k: v.copy() for k, v in net._coupling.u.items()}
    set_point = net.read_params()
    net.clamp(load_digits().x_train[:4])
    net.nudge(0.0)
    net.relax()
    _, hold = homeostat.hold(net, u, set_point, net.read_params())
    assert hold.stopped.get("g1", 0) > 100  # the case that matters: many knobs on their stop
    quick, _, _ = homeostat.probe(net, u, iterations=3)
    slow, _, _ = homeostat.probe(net, u, iterations=30)
    kappa = {k: 1 - 1 / v for k, v in slow.items()}
    assert kappa["g1"] > 0.3
    assert 1 - 1 / quick["g1"] == pytest.approx(kappa["g1"], rel=0.2)
    assert 1 - 1 / quick["(joint)"] == pytest.approx(kappa["(joint)"], rel=0.2)
