"""Pulse-programmed memristive devices: the true, imperfect physics a controller never sees directly.

Each device holds a conductance in its own window ``[g_min, g_max]`` and moves only by SET (potentiation) and
RESET (depression) pulses. The pulse response is the one of :mod:`aeqprop.devicemodel` (shared with the
controller's nominal model): with a normalised pulse state p in [0, 1] and nonlinearity A,

    potentiation   g(p) = g_min + (g_max - g_min) * (1 - exp(-p/A)) / (1 - exp(-1/A))
    depression     g(q) = g_max - (g_max - g_min) * (1 - exp(-q/A_d)) / (1 - exp(-1/A_d))

and one pulse advances p (or q) by ``1/levels``. A pulse train starts from the state the present conductance
has on the curve of its direction (so the step size depends on the state and on the direction), then adds
cycle-to-cycle noise of ``c2c * window`` per pulse (n pulses add sqrt(n) of it: independent per pulse).
Every parameter spreads from device to device (log-normal, relative spread ``d2d``); a fraction of devices is
stuck at g_min or g_max; an optional drift relaxes every free device toward g_min by a fraction per
programming event. Reads return ``g * (1 + read_noise * xi)``.

The ideal device is the limit ``levels -> inf``, ``a_pot = a_dep = inf`` (linear), no noise, no spread, no
faults: a pulse count ``round(dg * levels / window)`` then moves g by dg to within ``window / levels``.

All operations are vectorised over devices of any shape; every random draw comes from the Generator passed in
(the crossbar's own, so that a snapshot of it makes resume exact).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from aeqprop.devicemodel import LINEAR_A, curve, finite_a, inverse_curve, step_response


def _a(value: float) -> float:
    return float(finite_a(value))


@dataclass(frozen=True)
class DeviceModel:
    """Nominal device parameters and their spread (what a datasheet and a wafer map would tell).

    ``c2c`` is the standard deviation of one pulse's conductance error as a fraction of the window;
    ``read_noise`` is the relative standard deviation of one conductance read; ``drift`` is the fraction of
    ``g - g_min`` lost at every programming event (0 = no drift). A pulse of amplitude ``pulse_v`` and width
    ``pulse_width_s`` across a device of conductance g costs ``pulse_v² · g · pulse_width_s`` joules.
    """

    g_min: float = 0.0
    g_max: float = 1.0
    levels: int = 64
    a_pot: float = math.inf
    a_dep: float = math.inf
    c2c: float = 0.0
    d2d: float = 0.0
    read_noise: float = 0.0
    stuck_min: float = 0.0
    stuck_max: float = 0.0
    drift: float = 0.0
    pulse_v: float = 1.0
    pulse_width_s: float = 1e-7

    def __post_init__(self) -> None:
        if not 0 <= self.g_min < self.g_max:
            raise ValueError(f"device window must satisfy 0 <= g_min < g_max, got [{self.g_min}, {self.g_max}]")
        if self.levels < 1:
            raise ValueError(f"levels must be >= 1, got {self.levels}")
        if self.a_pot <= 0 or self.a_dep <= 0:
            raise ValueError("nonlinearities a_pot and a_dep must be positive (inf = linear)")
        if self.stuck_min + self.stuck_max > 1:
            raise ValueError("stuck_min + stuck_max must not exceed 1")

    @property
    def step(self) -> float:
        """Nominal conductance change of one pulse of a linear device (S)."""
        return (self.g_max - self.g_min) / self.levels


class DeviceArray:
    """The true devices behind one conductance matrix: per-device parameters, state and faults."""

    #: Per-device parameters drawn once at fabrication (saved in snapshots with the state).
    FIELDS = ("g_min", "g_max", "a_pot", "a_dep", "c2c", "read_noise", "stuck")

    def __init__(self, model: DeviceModel, shape: tuple[int, ...], rng: np.random.Generator,
                 measured: Mapping[str, np.ndarray] | None = None) -> None:
        """Fabricate devices drawn around ``model``, or, for a chip's twin, exactly the ``measured`` ones
        (per-device g_min, g_max, levels, a_pot, a_dep, c2c, read_noise, stuck of a device file)."""
        self.model = model
        self.pulse_energy_j = 0.0  # cumulative programming energy (not part of a snapshot: a cost, not a state)
        self.pulse_time_s = 0.0  # all devices pulsed in parallel: a call costs its longest train
        self.levels: float | np.ndarray = model.levels
        self._linear = math.isinf(model.a_pot) and math.isinf(model.a_dep)
        if measured is not None:
            self._load_measured(measured, shape)
            return

        def spread(nominal: float) -> np.ndarray:
            if model.d2d == 0:
                return np.full(shape, nominal)
            return nominal * np.exp(model.d2d * rng.standard_normal(shape))

        g_max = spread(model.g_max)
        self.g_max = g_max
        self.g_min = np.minimum(spread(model.g_min), 0.5 * g_max)
        self.a_pot = spread(_a(model.a_pot))
        self.a_dep = spread(_a(model.a_dep))
        self.c2c = spread(model.c2c)
        self.read_noise = spread(model.read_noise)
        draw = rng.random(shape)
        # 0 = free, -1 = stuck at g_min, +1 = stuck at g_max
        self.stuck = np.where(draw < model.stuck_min, -1, np.where(draw > 1 - model.stuck_max, 1, 0)).astype(np.int8)
        self.g = self.g_min.copy()
        self._apply_faults()

    def _load_measured(self, measured: Mapping[str, np.ndarray], shape: tuple[int, ...]) -> None:
        def take(name: str) -> np.ndarray:
            return np.broadcast_to(np.asarray(measured[name], dtype=np.float64), shape).copy()

        self.g_max = take("g_max")
        self.g_min = np.minimum(take("g_min"), 0.5 * self.g_max)
        self.levels = take("levels")
        self.a_pot = np.minimum(take("a_pot"), LINEAR_A)
        self.a_dep = np.minimum(take("a_dep"), LINEAR_A)
        self._linear = bool(np.all(self.a_pot >= LINEAR_A) and np.all(self.a_dep >= LINEAR_A))
        self.c2c = take("c2c")
        self.read_noise = take("read_noise")
        self.stuck = np.sign(take("stuck")).astype(np.int8)
        self.g = self.g_min.copy()
        self._apply_faults()

    # --- state ----------------------------------------------------------------------------------------
    def initialise(self, g: np.ndarray) -> None:
        """Form the devices near ``g``: the nearest level on each device's own potentiation curve."""
        u = (np.asarray(g, dtype=np.float64) - self.g_min) / (self.g_max - self.g_min)
        p = np.round(inverse_curve(u, self.a_pot) * self.levels) / self.levels
        self.g = self.g_min + (self.g_max - self.g_min) * curve(p, self.a_pot)
        self._apply_faults()

    def apply_pulses(self, counts: np.ndarray, rng: np.random.Generator) -> None:
        """Fire ``counts`` pulses per device: positive = SET (potentiation), negative = RESET (depression)."""
        counts = np.asarray(counts)
        if counts.shape != self.g.shape:
            raise ValueError(f"pulse counts: expected shape {self.g.shape}, got {counts.shape}")
        if not np.issubdtype(counts.dtype, np.integer):
            raise TypeError(f"pulse counts must be integers, got dtype {counts.dtype}")
        window = self.g_max - self.g_min
        u = (self.g - self.g_min) / window
        if self._linear:  # both curves are the identity: skip the exp/log round trip
            new = np.clip(u + counts / self.levels, 0.0, 1.0)
        else:
            new = step_response(u, counts, self.levels, self.a_pot, self.a_dep)
        g = self.g_min + window * new
        n_abs = np.abs(counts)
        # each pulse at the conductance it meets: the mean of the start and end of the train, to first order
        joules_per_siemens = self.model.pulse_v**2 * self.model.pulse_width_s
        self.pulse_energy_j += float(np.sum(n_abs * 0.5 * (self.g + g))) * joules_per_siemens
        self.pulse_time_s += float(n_abs.max(initial=0)) * self.model.pulse_width_s
        if self.model.c2c > 0:
            g += self.c2c * window * np.sqrt(np.abs(counts)) * rng.standard_normal(g.shape)
        if self.model.drift > 0:
            g -= self.model.drift * (g - self.g_min)
        self.g = np.clip(g, self.g_min, self.g_max)
        self._apply_faults()

    def read(self, rng: np.random.Generator) -> np.ndarray:
        """One measurement of every conductance (relative read noise)."""
        if self.model.read_noise == 0:
            return self.g.copy()
        return self.g * (1.0 + self.read_noise * rng.standard_normal(self.g.shape))

    def _apply_faults(self) -> None:
        self.g = np.where(self.stuck < 0, self.g_min, np.where(self.stuck > 0, self.g_max, self.g))

    # --- snapshots ------------------------------------------------------------------------------------
    def state(self) -> dict[str, np.ndarray]:
        out = {name: getattr(self, name).copy() for name in self.FIELDS}
        out["g"] = self.g.copy()
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for name in (*self.FIELDS, "g"):
            value = np.array(state[name])
            if value.shape != self.g.shape:
                raise ValueError(f"device state {name}: expected shape {self.g.shape}, got {value.shape}")
            setattr(self, name, value)


__all__ = ["LINEAR_A", "DeviceArray", "DeviceModel", "curve", "inverse_curve"]
