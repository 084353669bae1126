"""The fused EP step (capability ``contrast``): the same update as reading, combining and programming.

A system that offers ``contrast`` accumulates weighted local terms over the phases of a batch and programs
rate × their sum itself. These tests hold it to the unfused route (read_local, the estimator's sum, SGD,
program), check that the rule uses it only where nothing else needs the gradient arrays, and that the
conformance kit catches a fused step that is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pytest
from aeqprop.simulators.resistive import ResistiveConfig, ResistiveNetwork

from aeqprop.adaptive import AdaptiveReads
from aeqprop.data import load_dataset
from aeqprop.estimators import estimate_and_program, estimate_gradient
from aeqprop.optim import SGD
from aeqprop.rules import EquilibriumPropagation
from aeqprop.system import CapabilityError
from aeqprop.testing import check_system
from aeqprop.trainer import Trainer, TrainSettings

from .conftest import small_network

UNFUSED = ["local", "program", "stepwise"]
FUSED = [*UNFUSED, "contrast"]  # without "phases": the phases of a step run one after another, as unfused


def _pair(**kw) -> tuple[ResistiveNetwork, ResistiveNetwork]:
    """The same network twice: one offering ``contrast`` (not ``phases``), one without it."""
    return small_network(offers=FUSED, **kw), small_network(offers=UNFUSED, **kw)


def _relative_gap(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray], before: Mapping[str, np.ndarray]) -> float:
    """Largest parameter difference, relative to the largest update."""
    return max(float(np.max(np.abs(a[k] - b[k]))) / float(np.max(np.abs(b[k] - before[k]))) for k in b)


@pytest.mark.parametrize("estimator", ["centered", "one-sided", "stencil", "random-sign"])
@pytest.mark.parametrize(("hidden", "batch"), [((6,), 1), ((6,), 4), ((8, 6), 3), ((8, 6, 6), 2)])
def test_fused_step_equals_the_unfused_rule(estimator: str, hidden: tuple[int, ...], batch: int) -> None:
    """Five EP steps of the rule, fused and unfused, leave the same parameters (float64: within 1e-9 of
    the update) and see the same outputs."""
    fused, plain = _pair(hidden=hidden, seed=1, init_gain=5.0)
    assert "contrast" in fused.spec.capabilities and "contrast" not in plain.spec.capabilities
    before = plain.read_params()
    rules = [EquilibriumPropagation(estimator, 0.1, SGD(n.spec.params, [0.01] * len(hidden) + [0.005], 0.002),
                                    np.random.default_rng(7)) for n in (fused, plain)]
    data = np.random.default_rng(3)
    for _ in range(5):
        x, y = data.random((batch, 5)), data.random((batch, 3))
        out_fused = rules[0].train_step(fused, x, y).outputs
        out_plain = rules[1].train_step(plain, x, y).outputs
        np.testing.assert_allclose(out_fused, out_plain, rtol=1e-9, atol=1e-12)
    assert _relative_gap(fused.read_params(), plain.read_params(), before) < 1e-9


def test_fused_update_is_rate_times_the_estimate() -> None:
    """estimate_and_program programs exactly rates × estimate_gradient's estimate, parameter by parameter,
    including a rate of zero (that parameter is left alone) and a parameter the rates do not name."""
    fused, plain = _pair(hidden=(6, 4), seed=4, init_gain=5.0)
    x, y = np.random.default_rng(1).random((3, 5)), np.random.default_rng(2).random((3, 3))
    before = plain.read_params()
    rates = {"g1": -0.1, "g2": 0.0, "g3": -0.3, "b1": -0.05, "b2": -0.2}  # b3 not named
    estimate = estimate_gradient(plain, x, y, "centered", 0.3).gradient
    plain.program({k: rates[k] * v for k, v in estimate.items() if k in rates})
    est = estimate_and_program(fused, x, y, "centered", 0.3, rates)
    assert est.gradient == {} and est.relaxations == 3
    after = fused.read_params()
    np.testing.assert_array_equal(after["g2"], before["g2"])
    np.testing.assert_array_equal(after["b3"], before["b3"])
    for name in ("g1", "g3", "b1", "b2"):
        np.testing.assert_allclose(after[name], plain.read_params()[name], rtol=0, atol=1e-12)


def test_fused_step_respects_the_window() -> None:
    """A huge rate drives conductances out of [g_min, g_max]: the fused step clips them like program does."""
    fused, plain = _pair(hidden=(6,), seed=5, g_min=0.01, g_max=0.5)
    x, y = np.random.default_rng(1).random((2, 5)), np.random.default_rng(2).random((2, 3))
    for net in (fused, plain):
        rule = EquilibriumPropagation("centered", 0.05, SGD(net.spec.params, 1e3), np.random.default_rng(0))
        rule.train_step(net, x, y)
    g = fused.read_params()["g1"]
    assert g.min() == 0.01 and g.max() == 0.5
    np.testing.assert_allclose(g, plain.read_params()["g1"], rtol=1e-9)  # rounding of a 1e3 rate


class _Spy:
    """Counts the contract calls a rule makes on a system (every other attribute passes through)."""

    def __init__(self, system: ResistiveNetwork) -> None:
        self._system = system
        self.calls: dict[str, int] = {}

    def __getattr__(self, name: str):
        attr = getattr(self._system, name)
        if name in ("read_local", "program", "accumulate_local", "accumulate_phases", "program_accumulated"):
            def counted(*args, **kwargs):
                self.calls[name] = self.calls.get(name, 0) + 1
                return attr(*args, **kwargs)
            return counted
        return attr


def _step_calls(net: ResistiveNetwork, **rule_kw) -> dict[str, int]:
    spy = _Spy(net)
    optimizer = rule_kw.pop("optimizer", None) or SGD(net.spec.params, 0.05)
    rule = EquilibriumPropagation("centered", 0.05, optimizer, np.random.default_rng(0), **rule_kw)
    rng = np.random.default_rng(1)
    rule.train_step(spy, rng.random((2, 5)), rng.random((2, 3)))  # type: ignore[arg-type]
    return spy.calls


def test_rule_fuses_when_offered() -> None:
    assert _step_calls(small_network(offers=FUSED)) == {"accumulate_local": 2, "program_accumulated": 1}


def test_rule_runs_all_phases_in_one_call_when_offered() -> None:
    """With ``phases`` too, the free and both nudged phases of centered EP are one ``accumulate_phases`` call."""
    assert _step_calls(small_network()) == {"accumulate_phases": 1, "program_accumulated": 1}


def test_rule_does_not_fuse_without_the_capability() -> None:
    assert _step_calls(small_network(offers=UNFUSED)) == {"read_local": 2, "program": 1}


def test_rule_does_not_fuse_with_momentum() -> None:
    """An optimizer with momentum keeps a velocity from the gradient array itself: never fused."""
    net = small_network()
    optimizer = SGD(net.spec.params, 0.05)
    optimizer.momentum = 0.9  # type: ignore[attr-defined]  # as an SGD with momentum carries it
    assert optimizer.fused_rates() is None
    assert _step_calls(net, optimizer=optimizer) == {"read_local": 2, "program": 1}


def test_rule_does_not_fuse_when_the_estimate_itself_is_needed() -> None:
    """Adaptive reads measure the estimate's SNR from the per-phase reads: the unfused route."""
    calls = _step_calls(small_network(), adaptive=AdaptiveReads(1, 2.0, max_reads=4))
    assert "program_accumulated" not in calls and calls.get("program") == 1


def test_without_the_capability_the_methods_refuse() -> None:
    net = small_network(offers=UNFUSED)
    net.clamp(np.zeros((1, 5)))
    net.nudge(0.0)
    net.relax()
    with pytest.raises(CapabilityError, match="contrast"):
        net.accumulate_local(1.0)
    with pytest.raises(CapabilityError, match="contrast"):
        net.program_accumulated({"g1": -0.1})


def test_one_epoch_of_digits_is_the_same_fused_or_not() -> None:
    """The shipped digits recipe (float64): one epoch, fused and unfused, gives the same test accuracy.

    The parameters drift apart over the epoch by more than rounding: a 1e-16 difference can end a relaxation
    one sweep earlier or later, which moves the equilibrium by up to ``tol_v``, and that difference is then
    learned from. They stay within 1e-3 of their scale (measured: 2e-4)."""
    data = load_dataset("digits")
    results = []
    for offers in (FUSED, UNFUSED):
        cfg = ResistiveConfig(inputs=64, hidden=[256], outputs=10, input_gain=40.0, offers=offers)
        net = cfg.build(np.random.default_rng(0))
        rule = EquilibriumPropagation("centered", 1.0, SGD(net.spec.params, 0.05, decay=0.9), np.random.default_rng(1))
        trainer = Trainer(net, rule, data, TrainSettings(epochs=1, batch_size=4, progress=False, log=None),
                          np.random.default_rng(2))
        trainer.fit()
        results.append((trainer.state.history[-1]["test_accuracy"], net.read_params()))
    (acc_fused, fused), (acc_plain, plain) = results
    assert acc_fused == acc_plain
    for name in plain:
        scale = float(np.max(np.abs(plain[name])))
        assert float(np.max(np.abs(fused[name] - plain[name]))) <= 1e-3 * scale, name


def test_fused_float32_input_update_is_closer_to_float64() -> None:
    """At a DRN input gain (480 V) each phase's input squares are ~1e5 V²: the separate path rounds them in
    float32 before the phases are subtracted, the fused path cancels them exactly (the weights sum to zero).
    Against a float64 run from the same parameters, the fused float32 g1 update is several times closer
    (measured 1.3e-6 against 1.3e-5 relative here; 50x at DRN-XS size)."""
    x, y = np.random.default_rng(1).random((4, 20)), np.eye(3)[[0, 1, 2, 0]]
    start = ResistiveConfig(inputs=20, hidden=[16], outputs=3, input_gain=480.0).build(np.random.default_rng(0))

    def update(dtype: str, offers: list[str] | None, tol_v: float) -> dict[str, np.ndarray]:
        cfg = ResistiveConfig(inputs=20, hidden=[16], outputs=3, input_gain=480.0, dtype=dtype, tol_v=tol_v,
                              max_sweeps=100_000, offers=offers)
        net = cfg.build(np.random.default_rng(0))
        net.restore({k: v.astype(dtype) for k, v in start.snapshot().items()})
        before = {k: v.astype(np.float64) for k, v in net.read_params().items()}
        rule = EquilibriumPropagation("centered", 0.1, SGD(net.spec.params, 0.01), np.random.default_rng(0))
        rule.train_step(net, x, y)
        return {k: v.astype(np.float64) - before[k] for k, v in net.read_params().items()}

    reference = update("float64", UNFUSED, 1e-11)

    def error(d: dict[str, np.ndarray]) -> float:
        return float(np.linalg.norm(d["g1"] - reference["g1"]) / np.linalg.norm(reference["g1"]))

    fused, plain = error(update("float32", None, 1e-4)), error(update("float32", UNFUSED, 1e-4))
    assert fused < plain / 3 and fused < 1e-5, (fused, plain)


# --- the conformance kit catches a broken fused step -------------------------------------------------------
SETTINGS = ResistiveConfig(inputs=3, hidden=[4], outputs=2, bias_init=0.1, g_max=2.0)


def _build(cls: type[ResistiveNetwork]) -> ResistiveNetwork:
    real = SETTINGS.build(np.random.default_rng(0))
    return cls(real.topology, real.read_params(), g_min=SETTINGS.g_min, g_max=SETTINGS.g_max, tol_v=SETTINGS.tol_v)


class KeepsLastPhase(ResistiveNetwork):
    """Holds only the last phase (a two-register chip that overwrites instead of adding)."""

    def accumulate_local(self, weight: float, reads: int = 1) -> None:
        self._contrast.clear()
        super().accumulate_local(weight, reads)


class IgnoresWeightSign(ResistiveNetwork):
    """Adds |weight|: the contrast becomes a sum."""

    def accumulate_local(self, weight: float, reads: int = 1) -> None:
        super().accumulate_local(abs(weight), reads)


class SkipsBiases(ResistiveNetwork):
    """Programs the conductances only."""

    def program_accumulated(self, rates: Mapping[str, float]) -> None:
        super().program_accumulated({k: v for k, v in rates.items() if k.startswith("g")})


class KeepsAccumulation(ResistiveNetwork):
    """Does not start over after programming: the next batch adds to this one's phases."""

    def program_accumulated(self, rates: Mapping[str, float]) -> None:
        held = list(self._contrast.weights)
        super().program_accumulated(rates)
        self._contrast.weights.extend(held)


@pytest.mark.parametrize(("cls", "says"), [
    (KeepsLastPhase, "away from program() of the combined read_local()"),
    (IgnoresWeightSign, "away from program() of the combined read_local()"),
    (SkipsBiases, "'b1'"),
    (KeepsAccumulation, "nothing accumulated"),
])
def test_kit_catches_a_broken_fused_step(cls: type[ResistiveNetwork], says: str) -> None:
    assert check_system(lambda: _build(ResistiveNetwork), checks=["contrast"]).ok
    report = check_system(lambda: _build(cls), checks=["contrast"], raise_on_failure=False)
    assert report.failed_checks() == ["contrast"], str(report)
    assert says in report.failures[0].detail, report.failures[0].detail
