"""Measure a chip's devices through the contract: read noise, pulse-response curves, optional drift.

Only ``read_params`` and ``apply_pulses`` (capability ``pulse``) or ``program`` are used, so the same code runs
on a simulator, a virtual instrument or a rig (whose safety limits check every command it sends). Every
weight-role parameter group is measured, all its devices at once (the contract fires counts per matrix).

The plan, per device: a full RESET train and a full SET train (to start from a known end of the window),
``noise_reads`` reads at the top of the window, then ``cycles`` × (depression train, potentiation train) of
``pulses`` pulses each, read every ``step`` pulses (``reads`` reads averaged), then optionally ``drift_reads``
reads ``drift_interval_s`` apart. The plan's pulses per device are known before anything is sent and must fit
``max_pulses`` (an endurance budget); ``max_seconds`` stops the measurement at the next phase boundary. After
every phase the partial measurements and the system's snapshot go to the run directory's checkpoint, so an
interrupted characterisation resumes at the phase it stopped in.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .rundir import RunDirectory
from .system import AeqpropError, CapabilityError, PhysicalSystem

#: Program-only systems: one "pulse" is window / (PROGRAM_LEVELS * pulses), so a train overshoots the window.
PROGRAM_LEVELS = 0.8


class CharacterisationError(AeqpropError):
    """The settings or the system cannot give a characterisation (a user error: nothing was sent)."""


class BudgetExhausted(AeqpropError):
    """The time budget ran out; the partial measurements are checkpointed and can be resumed."""

    exit_code = 1


@dataclass(frozen=True)
class Settings:
    """How much to measure; every count is per device."""

    cycles: int = 3
    pulses: int = 64
    step: int = 1
    reads: int = 1
    noise_reads: int = 32
    drift_reads: int = 0
    drift_interval_s: float = 1.0
    max_pulses: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in ("cycles", "pulses", "step", "reads", "noise_reads"):
            if getattr(self, name) < 1:
                raise CharacterisationError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.pulses % self.step:
            raise CharacterisationError(f"--pulses ({self.pulses}) must be a multiple of --step ({self.step})")
        if self.noise_reads < 2:
            raise CharacterisationError("--noise-reads must be at least 2 (a standard deviation needs two reads)")
        if self.drift_reads < 0 or self.drift_interval_s < 0:
            raise CharacterisationError("--drift-reads and --drift-interval must not be negative")
        if self.max_pulses is not None and self.planned_pulses() > self.max_pulses:
            raise CharacterisationError(
                f"--max-pulses {self.max_pulses}: the plan fires {self.planned_pulses()} pulses per device "
                f"(2 x {self.pulses} to initialise + {self.cycles} cycles x 2 x {self.pulses}); "
                "lower --cycles or --pulses"
            )

    def planned_pulses(self) -> int:
        """Pulses each device receives over the whole plan."""
        return 2 * self.pulses * (1 + self.cycles)

    @property
    def points(self) -> int:
        """Reads per train (including the one before its first pulse)."""
        return self.pulses // self.step + 1


@dataclass
class Measurements:
    """Raw data, per weight group: ``curves`` (cycles, 2, points, *shape) with direction 0 = depression,
    1 = potentiation; ``noise`` (noise_reads, *shape); ``drift`` (drift_reads, *shape) and its times."""

    curves: dict[str, np.ndarray] = field(default_factory=dict)
    noise: dict[str, np.ndarray] = field(default_factory=dict)
    drift: dict[str, np.ndarray] = field(default_factory=dict)
    drift_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    phases_done: int = 0
    pulses_fired: int = 0
    elapsed_s: float = 0.0

    def state(self) -> dict[str, Any]:
        return {
            "curves": self.curves, "noise": self.noise, "drift": self.drift, "drift_times": self.drift_times,
            "phases_done": self.phases_done, "pulses_fired": self.pulses_fired, "elapsed_s": self.elapsed_s,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Measurements:
        arrays = {k: {n: np.asarray(v) for n, v in state[k].items()} for k in ("curves", "noise", "drift")}
        return cls(**arrays, drift_times=np.asarray(state["drift_times"], dtype=np.float64),
                   phases_done=int(state["phases_done"]), pulses_fired=int(state["pulses_fired"]),
                   elapsed_s=float(state["elapsed_s"]))


class Characteriser:
    """Runs the plan of :class:`Settings` on one system, checkpointing into a run directory after each phase."""

    def __init__(self, system: PhysicalSystem, settings: Settings, run_dir: RunDirectory | None = None,
                 log: Callable[[str], None] | None = None) -> None:
        caps = system.spec.capabilities
        self.pulsed = "pulse" in caps
        if not self.pulsed and "program" not in caps:
            raise CapabilityError(
                "characterise needs capability 'pulse' or 'program' (and read_params); "
                f"the system offers {sorted(caps)}"
            )
        self.groups = [n for n, p in system.spec.params.items() if p.role == "weight"]
        if not self.groups:
            raise CharacterisationError("characterise: the system has no weight-role parameters (devices) to measure")
        self.system = system
        self.settings = settings
        self.run_dir = run_dir
        self.log = log
        self.data = Measurements()
        self._windows: dict[str, float] = {}
        if not self.pulsed:
            for name in self.groups:
                lo, hi = system.spec.params[name].bounds
                if hi is None:
                    raise CharacterisationError(
                        f"characterise: {name} has no upper bound and the system offers no pulses; "
                        "a program-only system must state its conductance window"
                    )
                self._windows[name] = float(hi - (lo or 0.0))

    # --- primitives -----------------------------------------------------------------------------------------
    def _shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.system.spec.params[name].shape)

    def _fire(self, n: int) -> None:
        """``n`` signed pulses at every device (program-only systems: n steps of window/(0.8 pulses))."""
        if n == 0:
            return
        if self.pulsed:
            counts = {g: np.full(self._shape(g), n, dtype=np.int64) for g in self.groups}
            self.system.apply_pulses(counts)  # type: ignore[attr-defined]
        else:  # a train crosses the window in 80 % of its pulses: the plateaus at its end give the window
            s = PROGRAM_LEVELS * self.settings.pulses
            self.system.program({g: np.full(self._shape(g), n * self._windows[g] / s) for g in self.groups})
        self.data.pulses_fired += abs(n)

    def _read(self, reads: int) -> dict[str, np.ndarray]:
        total = {g: np.zeros(self._shape(g)) for g in self.groups}
        for _ in range(reads):
            values = self.system.read_params()
            for g in self.groups:
                total[g] += np.asarray(values[g], dtype=np.float64)
        return {g: v / reads for g, v in total.items()}

    # --- the plan ---------------------------------------------------------------------------------------------
    def phases(self) -> list[tuple[str, Callable[[], None]]]:
        s = self.settings
        plan: list[tuple[str, Callable[[], None]]] = [
            ("reset (full depression)", lambda: self._fire(-s.pulses)),
            ("set (full potentiation)", lambda: self._fire(s.pulses)),
            ("read noise", self._noise),
        ]
        for c in range(s.cycles):
            plan.append((f"cycle {c + 1}: depression", functools.partial(self._train, c, 0)))
            plan.append((f"cycle {c + 1}: potentiation", functools.partial(self._train, c, 1)))
        if s.drift_reads:
            plan.append(("drift", self._drift))
        return plan

    def _noise(self) -> None:
        reads = [self._read(1) for _ in range(self.settings.noise_reads)]
        self.data.noise = {g: np.stack([r[g] for r in reads]) for g in self.groups}

    def _train(self, cycle: int, direction: int) -> None:
        s = self.settings
        if not self.data.curves:
            self.data.curves = {g: np.full((s.cycles, 2, s.points, *self._shape(g)), np.nan) for g in self.groups}
        sign = 1 if direction else -1
        first = self._read(s.reads)
        for g in self.groups:
            self.data.curves[g][cycle, direction, 0] = first[g]
        for k in range(1, s.points):
            self._fire(sign * s.step)
            values = self._read(s.reads)
            for g in self.groups:
                self.data.curves[g][cycle, direction, k] = values[g]

    def _drift(self) -> None:
        s = self.settings
        start = time.monotonic()
        reads, times = [], []
        for k in range(s.drift_reads):
            if k:
                time.sleep(s.drift_interval_s)
            times.append(time.monotonic() - start)
            reads.append(self._read(s.reads))
        self.data.drift = {g: np.stack([r[g] for r in reads]) for g in self.groups}
        self.data.drift_times = np.asarray(times)

    # --- checkpoints ----------------------------------------------------------------------------------------
    def save(self) -> None:
        if self.run_dir is not None:
            state = {"measurements": self.data.state(), "settings": asdict(self.settings)}
            self.run_dir.save_checkpoint(self.system.snapshot(), state)

    def resume(self) -> None:
        """Continue after the last completed phase of the run directory's checkpoint."""
        assert self.run_dir is not None
        arrays, state = self.run_dir.load_checkpoint()
        budget = ("max_pulses", "max_seconds")  # a budget may be raised to finish; the plan may not change
        saved = {k: v for k, v in state.get("settings", {}).items() if k not in budget}
        if saved != {k: v for k, v in asdict(self.settings).items() if k not in budget}:
            raise CharacterisationError(
                f"--resume {self.run_dir.path}: the settings differ from the interrupted characterisation's "
                f"({saved})"
            )
        self.system.restore(arrays)
        self.data = Measurements.from_state(state["measurements"])

    def run(self) -> Measurements:
        """Run (or finish) the plan; raises :class:`BudgetExhausted` when ``max_seconds`` runs out."""
        s = self.settings
        plan = self.phases()
        for index in range(self.data.phases_done, len(plan)):
            if s.max_seconds is not None and self.data.elapsed_s >= s.max_seconds:
                self.save()
                where = f"; continue with --resume {self.run_dir.path}" if self.run_dir is not None else ""
                raise BudgetExhausted(
                    f"characterise: time budget of {s.max_seconds:g} s spent after {index}/{len(plan)} phases{where}"
                )
            name, phase = plan[index]
            if self.log:
                self.log(f"[{index + 1}/{len(plan)}] {name}")
            start = time.monotonic()
            phase()
            self.data.elapsed_s += time.monotonic() - start
            self.data.phases_done = index + 1
            self.save()
        return self.data


__all__ = ["BudgetExhausted", "CharacterisationError", "Characteriser", "Measurements", "Settings"]
