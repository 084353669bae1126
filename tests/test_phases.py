"""All phases of an EP step in one call (capability ``phases``): the same step as the phases one by one.

The resistive network either stacks the phases into one batch (small problems, where a sweep costs its numpy
calls) or runs them in turn (larger ones); both are held to the sequential fused step, to the state it leaves
behind, and the conformance kit must catch a wrong implementation.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest
from aeqprop.simulators.resistive import ResistiveConfig, ResistiveNetwork

from aeqprop.optim import SGD
from aeqprop.rules import EquilibriumPropagation
from aeqprop.system import CapabilityError, NotSettled, RelaxReport
from aeqprop.testing import check_system

from .conftest import small_network

FUSED = ["local", "program", "stepwise", "contrast"]  # the sequential fused step, the reference here
PATHS = {"stacked": 10**9, "in turn": 0}  # STACK_LIMIT that forces each way of solving the phases


def _tight(path: str, **kw) -> ResistiveNetwork:
    """A small network relaxed to 1e-13 V, so that two routes to one equilibrium agree to rounding."""
    net = small_network(tol_v=1e-13, max_sweeps=100_000, **kw)
    net.STACK_LIMIT = PATHS[path]  # type: ignore[misc]
    return net


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("estimator", ["centered", "one-sided", "stencil", "random-sign"])
@pytest.mark.parametrize(("hidden", "batch"), [((6,), 1), ((6,), 4), ((8, 6), 3), ((8, 6, 6), 2), ((), 3)])
def test_rule_step_with_phases_equals_the_sequential_fused_step(
    path: str, estimator: str, hidden: tuple[int, ...], batch: int
) -> None:
    """Five EP steps, phases in one call or one by one, leave the same parameters (within 1e-9 of the
    update) and report the same free outputs."""
    together = _tight(path, hidden=hidden, seed=1, init_gain=5.0)
    one_by_one = small_network(hidden=hidden, seed=1, init_gain=5.0, tol_v=1e-13, max_sweeps=100_000, offers=FUSED)
    before = one_by_one.read_params()
    rates = [0.01] * len(hidden) + [0.005]
    rules = [EquilibriumPropagation(estimator, 0.1, SGD(n.spec.params, rates, 0.002), np.random.default_rng(7))
             for n in (together, one_by_one)]
    data = np.random.default_rng(3)
    for _ in range(5):
        x, y = data.random((batch, 5)), data.random((batch, 3))
        reports = [rule.train_step(net, x, y) for rule, net in zip(rules, (together, one_by_one))]
        np.testing.assert_allclose(reports[0].outputs, reports[1].outputs, rtol=1e-9, atol=1e-12)
        assert reports[0].relaxations >= reports[1].relaxations  # a free phase is always settled
    after, reference = together.read_params(), one_by_one.read_params()
    gap = max(float(np.max(np.abs(after[k] - reference[k]))) / float(np.max(np.abs(reference[k] - before[k])))
              for k in reference)
    assert gap < 1e-9


@pytest.mark.parametrize("path", list(PATHS))
@pytest.mark.parametrize("betas", [[0.3, -0.3], [0.3, 0.0], [0.0, 0.3, -0.15], [-0.2]])
def test_the_system_is_left_at_the_last_phase(path: str, betas: Sequence[float]) -> None:
    """Afterwards the outputs are those of the last phase's equilibrium, reached the ordinary way."""
    net, reference = (_tight(path, hidden=(8, 6), seed=1, init_gain=5.0) for _ in range(2))
    x, y = np.random.default_rng(1).random((3, 5)), np.random.default_rng(2).random((3, 3))
    net.clamp(x)
    reports = net.accumulate_phases(betas, [1.0] * len(betas), y)
    assert len(reports) == len(betas) and all(isinstance(r, RelaxReport) and r.settled for r in reports)
    reference.clamp(x)
    reference.nudge(betas[-1], y)
    reference.relax()
    np.testing.assert_allclose(net.read_outputs(), reference.read_outputs(), rtol=0, atol=1e-11)
    net.nudge(0.0)  # and an ordinary relaxation goes on from there
    net.relax()
    reference.nudge(0.0)
    reference.relax()
    np.testing.assert_allclose(net.read_outputs(), reference.read_outputs(), rtol=0, atol=1e-11)


def test_phases_are_checked() -> None:
    net = small_network()
    with pytest.raises(RuntimeError, match="clamp"):
        net.accumulate_phases([0.1], [1.0], np.zeros((1, 3)))
    net.clamp(np.zeros((2, 5)))
    with pytest.raises(ValueError, match="one weight per nudge"):
        net.accumulate_phases([0.1, -0.1], [1.0], np.zeros((2, 3)))
    with pytest.raises(ValueError, match="shape"):
        net.accumulate_phases([0.1], [1.0], np.zeros((3, 3)))
    with pytest.raises(ValueError, match="needs a target"):
        net.accumulate_phases([0.1, 0.0], [1.0, 0.0], None)  # type: ignore[arg-type]
    net.accumulate_phases([0.0], [1.0], None)  # type: ignore[arg-type]  # a free phase needs none
    plain = small_network(offers=FUSED)
    plain.clamp(np.zeros((2, 5)))
    with pytest.raises(CapabilityError, match="phases"):
        plain.accumulate_phases([0.1], [1.0], np.zeros((2, 3)))


@pytest.mark.parametrize("path", list(PATHS))
def test_a_nudge_with_no_equilibrium_raises_not_settled(path: str) -> None:
    net = small_network()
    net.STACK_LIMIT = PATHS[path]  # type: ignore[misc]
    net.clamp(np.random.default_rng(0).random((2, 5)))
    with pytest.raises(NotSettled):
        net.accumulate_phases([0.1, -1e6, 0.0], [1.0, -1.0, 0.0], np.ones((2, 3)))


def test_stacking_follows_the_problem_size() -> None:
    """Phases are stacked while phases x batch x widest layer stays within STACK_LIMIT, else run in turn:
    the in-turn route sweeps each phase from the free equilibrium, so it reports different sweep counts."""
    cfg = ResistiveConfig(inputs=5, hidden=[64], outputs=3, input_gain=2.0, bias_init=0.1)
    net = cfg.build(np.random.default_rng(0))
    x, y = np.random.default_rng(1).random((4, 5)), np.random.default_rng(2).random((4, 3))
    net.clamp(x)
    stacked = net.accumulate_phases([0.5, -0.5, 0.0], [1.0, -1.0, 0.0], y)  # 3 x 4 x 64 = 768 <= 4096
    assert len({r.sweeps for r in stacked}) == 1  # one relaxation for all three
    net.STACK_LIMIT = 767  # type: ignore[misc]
    net.program_accumulated({})
    net.clamp(x)
    in_turn = net.accumulate_phases([0.5, -0.5, 0.0], [1.0, -1.0, 0.0], y)
    assert in_turn[2].sweeps != in_turn[0].sweeps  # the free phase settles first, the nudged ones after it


# --- the conformance kit catches a wrong accumulate_phases ----------------------------------------------------
SETTINGS = ResistiveConfig(inputs=3, hidden=[4], outputs=2, bias_init=0.1, g_max=2.0)


def _build(cls: type[ResistiveNetwork]) -> ResistiveNetwork:
    real = SETTINGS.build(np.random.default_rng(0))
    return cls(real.topology, real.read_params(), g_min=SETTINGS.g_min, g_max=SETTINGS.g_max, tol_v=SETTINGS.tol_v)


class FirstNudgeOnly(ResistiveNetwork):
    """Relaxes every phase under the first nudge (a chip that latches its nudge once)."""

    def accumulate_phases(self, betas, weights, target, reads=1):  # type: ignore[no-untyped-def]
        return super().accumulate_phases([betas[0]] * len(betas), weights, target, reads)


class EndsFree(ResistiveNetwork):
    """Always goes back to the free equilibrium afterwards."""

    def accumulate_phases(self, betas, weights, target, reads=1):  # type: ignore[no-untyped-def]
        reports = super().accumulate_phases(betas, weights, target, reads)
        self.nudge(0.0)
        self.relax()
        return reports


class DropsWeights(ResistiveNetwork):
    """Holds every phase with weight 1."""

    def accumulate_phases(self, betas, weights, target, reads=1):  # type: ignore[no-untyped-def]
        return super().accumulate_phases(betas, [1.0] * len(weights), target, reads)


class OneReport(ResistiveNetwork):
    """Reports the stacked relaxation once instead of once per phase."""

    def accumulate_phases(self, betas, weights, target, reads=1):  # type: ignore[no-untyped-def]
        return super().accumulate_phases(betas, weights, target, reads)[:1]


@pytest.mark.parametrize(("cls", "says"), [
    (FirstNudgeOnly, "away from the last phase's"),
    (EndsFree, "away from the last phase's"),
    (DropsWeights, "away from the phases run one by one"),
    (OneReport, "not one RelaxReport per phase"),
])
def test_kit_catches_a_wrong_accumulate_phases(cls: type[ResistiveNetwork], says: str) -> None:
    assert check_system(lambda: _build(ResistiveNetwork), checks=["phases"]).ok
    report = check_system(lambda: _build(cls), checks=["phases"], raise_on_failure=False)
    assert report.failed_checks() == ["phases"], str(report)
    assert says in report.failures[0].detail, report.failures[0].detail
