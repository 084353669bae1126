"""The conformance kit catches broken systems, and names the check each one breaks.

Every broken system is the resistive network with one promise of the contract broken (one method overridden),
so a check that passes on the real network and fails here has caught exactly that defect.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pytest
from aeqprop.simulators.resistive import ResistiveConfig, ResistiveNetwork

from aeqprop.system import NotSettled, ParamSpec, SystemSpec
from aeqprop.testing import check_system

SETTINGS = ResistiveConfig(inputs=3, hidden=[4], outputs=2, bias_init=0.1, g_max=2.0)


class MixesSamples(ResistiveNetwork):
    """Outputs leak the batch mean into every sample (a shared node where there should be none)."""

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        out = super().read_outputs(reads)
        return out + 0.1 * out.mean(axis=0)


class SumsLocalReads(ResistiveNetwork):
    """read_local sums over the batch instead of averaging."""

    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        return {k: v * self._batch() for k, v in super().read_local(reads).items()}


class ShallowSnapshot(ResistiveNetwork):
    """snapshot hands out the live parameter arrays, which program() then changes in place."""

    def snapshot(self) -> dict[str, np.ndarray]:
        snap = super().snapshot()
        snap.update({f"param.{k}": v for k, v in self._params.items()})
        return snap


class AliasedReads(ResistiveNetwork):
    """read_params hands out the live parameter arrays (a view, not a measurement)."""

    def read_params(self) -> dict[str, np.ndarray]:
        return dict(self._params)


class ObjectSnapshot(ResistiveNetwork):
    """snapshot holds a Python object that np.savez could store only with pickle."""

    def snapshot(self) -> dict[str, np.ndarray]:
        snap = super().snapshot()
        snap["extra"] = np.array([{"sweeps": 3}], dtype=object)
        return snap


class RestoreKeepsParams(ResistiveNetwork):
    """restore brings the state back but forgets the parameters."""

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        params = self.read_params()
        super().restore(snapshot)
        self._params.update(params)


class IgnoresBounds(ResistiveNetwork):
    """program adds the increments but never clips conductances into their window."""

    def _apply_window(self) -> None:
        pass


class ZeroNudgeStillPulls(ResistiveNetwork):
    """nudge(0, target) still pulls the outputs a little toward the target."""

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        super().nudge(1e-3 if beta == 0 and target is not None else beta, target)


class ZeroNudgeForgetsTarget(ResistiveNetwork):
    """nudge(0) drops the target, so a later nudge(beta) without one raises."""

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        super().nudge(beta, target)
        if beta == 0:
            self._target = None


class UnstableRaisesValueError(ResistiveNetwork):
    """A nudge with no stable equilibrium raises a bare ValueError."""

    def relax(self):
        try:
            return super().relax()
        except NotSettled as exc:
            raise ValueError(str(exc)) from None


class UnstableReturnsNaN(ResistiveNetwork):
    """A nudge with no stable equilibrium returns NaN outputs silently."""

    def relax(self):
        try:
            return super().relax()
        except NotSettled:
            for layer in self._layers:
                layer[:] = np.nan
            return None


class LocalWithoutCapability(ResistiveNetwork):
    """Configured without 'local', yet read_local answers instead of raising CapabilityError."""

    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        return self._local(reads)


class ClaimsPulses(ResistiveNetwork):
    """Configured to offer 'pulse' without having apply_pulses."""


class Jittery(ResistiveNetwork):
    """Each relaxation ends at a slightly different point (an unseeded source of noise)."""

    def relax(self):
        report = super().relax()
        self._layers[-1] += 1e-9 * np.random.default_rng().standard_normal(self._layers[-1].shape)
        return report


class PadsInputs(ResistiveNetwork):
    """clamp silently pads or cuts an input of the wrong width."""

    def clamp(self, x: np.ndarray) -> None:
        x = np.atleast_2d(np.asarray(x, dtype=float))
        fixed = np.zeros((x.shape[0], self.spec.n_inputs))
        n = min(x.shape[1], self.spec.n_inputs)
        fixed[:, :n] = x[:, :n]
        super().clamp(fixed)


class LayerZero(ResistiveNetwork):
    """Biases declared on layer 0 (the inputs), and a role that is neither weight nor bias."""

    def __init__(self, *args, **kw) -> None:
        super().__init__(*args, **kw)
        params = {k: (ParamSpec(p.shape, p.bounds, p.unit, 0, p.role) if k == "b1" else p)
                  for k, p in self.spec.params.items()}
        params["g1"] = ParamSpec(params["g1"].shape, params["g1"].bounds, "S", 1, "synapse")  # type: ignore[arg-type]
        self.spec = SystemSpec(self.spec.n_inputs, self.spec.n_outputs, params, self.spec.capabilities)


class CloseTwiceFails(ResistiveNetwork):
    """close() refuses a second call."""

    def close(self) -> None:
        if getattr(self, "_closed", False):
            raise RuntimeError("already closed")
        self._closed = True
        super().close()


class CloseTwiceLogs(ResistiveNetwork):
    """close() swallows the failure of a second call but logs it: not idempotent either."""

    def close(self) -> None:
        if getattr(self, "_closed", False):
            logging.getLogger("aeqprop.drivers").error("could not switch the outputs off: link closed")
        self._closed = True
        super().close()


def build(cls: type[ResistiveNetwork], **overrides) -> ResistiveNetwork:
    """A system of class ``cls`` with the parameters the real network gets from the same seed."""
    real = SETTINGS.model_copy(update=overrides).build(np.random.default_rng(0))
    offers = overrides.get("offers")
    return cls(real.topology, real.read_params(), g_min=SETTINGS.g_min, g_max=SETTINGS.g_max,
               tol_v=SETTINGS.tol_v, capabilities=None if offers is None else frozenset(offers))


BROKEN = [
    (MixesSamples, {}, "batch", "differ by"),
    (SumsLocalReads, {}, "batch", "must be the batch mean"),
    (ShallowSnapshot, {}, "snapshot", "shares memory with the system"),
    (AliasedReads, {}, "snapshot", "read_params()['g1'] was changed by the system's later operations"),
    (ObjectSnapshot, {}, "snapshot", "object dtype"),
    (RestoreKeepsParams, {}, "restore", "after restore()"),
    (IgnoresBounds, {}, "program", "above its bound"),
    (ZeroNudgeStillPulls, {}, "nudge-zero", "a zero nudge must ignore its target"),
    (ZeroNudgeForgetsTarget, {}, "nudge-zero", "ValueError"),
    (UnstableRaisesValueError, {}, "unstable-nudge", "raised ValueError"),
    (UnstableReturnsNaN, {}, "unstable-nudge", "non-finite outputs"),
    (LocalWithoutCapability, {"offers": ["program"]}, "capabilities",
     "using capability 'local', which is not offered, was accepted silently"),
    (ClaimsPulses, {"offers": ["local", "program", "pulse"]}, "capabilities",
     "capability 'pulse' is offered but ['apply_pulses'] are missing"),
    (Jittery, {}, "determinism", "outputs of two fresh systems differ"),
    (PadsInputs, {}, "inputs", "was accepted silently"),
    (LayerZero, {}, "spec", "layer 0"),
    (CloseTwiceFails, {}, "close", "already closed"),
    (CloseTwiceLogs, {}, "close", "logged 1 error(s), first: could not switch the outputs off"),
]


def test_the_unbroken_network_passes_every_check() -> None:
    """The baseline: the same network built the same way passes, so each failure below is its defect's."""
    assert check_system(lambda: build(ResistiveNetwork)).ok
    assert check_system(lambda: build(ResistiveNetwork, offers=["program"])).ok


@pytest.mark.parametrize(("cls", "overrides", "check", "says"), BROKEN, ids=[b[0].__name__ for b in BROKEN])
def test_kit_names_the_broken_promise(cls, overrides, check: str, says: str) -> None:
    report = check_system(lambda: build(cls, **overrides), raise_on_failure=False)
    assert check in report.failed_checks(), str(report)
    detail = " ".join(f.detail for f in report.failures if f.check == check)
    assert says in detail, detail
