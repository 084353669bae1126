"""A virtual bench: Keithley 2450 SMUs and a 707B switch matrix wired to one simulated resistive network.

The wiring (README, "SMU rig"): every network node is a line on a 707B column (layer ``l`` on slot
``layer_slots[l]``, node ``i`` on column ``i + 1``; column 12 of every slot is circuit common). The input
lines (``+gain*x`` then ``-gain*x``) are driven directly by one SMU each. Matrix rows go to instruments:
A/B the voltmeter SMU (HI/LO), C/D the pulse SMU (HI/LO), E, F, G... nudge SMU ``k`` through a nudge resistor
of conductance ``nudge_conductance_s`` (= beta) to output node ``k``. One bias SMU per hidden and output node,
sourcing current into it, is wired directly (its level is the network's bias ``b``; off means 0 A).

Physics, kept simple and stated: the network settles whenever a measurement finds inputs, nudge relays or
devices changed since the last one (one relaxation, warm-started, exactly as the simulator's ``relax``);
the voltmeter reads the potential difference between the lines its HI and LO rows reach; a pulse across one
device (HI on line ``i`` of layer ``l-1``, LO on node ``j`` of layer ``l``) sees that device alone (a
selector per device: no sneak paths) and, above the threshold ``threshold_v``, changes its conductance by
``rate * width * (|V| - threshold_v)`` with the sign of V, where the width is what the instrument times: source
delay + aperture (NPLC / 50 Hz). Readings are full double precision (``repr``).

What would harm real devices is an error here, as an instrument or an interlock would report it: a relay that
switches while an instrument on its row sources anything but 0 (hot switching), the pulser reaching an input
line whose source is on (two sources on one line), a pulse with current autorange on or longer than the
interlock's ``max_pulse_width_s``, and an output switched on before any compliance was sent.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from aeqprop.system import AeqpropError

from .crossbar import Reply
from .faults import FaultPlan
from .instruments import Virtual707B, Virtual2450

__all__ = ["OVERFLOW", "BenchWiring", "SmuBench"]

#: What a Keithley SMU prints for a reading it cannot make (overflow): the rig treats it as a fault.
OVERFLOW = "9.9E+37"


@dataclass(frozen=True)
class BenchWiring:
    """Matrix rows of each instrument and the slot of each network layer (defaults: the README's map)."""

    layer_slots: tuple[int, ...] = (1, 2, 3)
    meter_rows: tuple[str, str] = ("A", "B")
    pulser_rows: tuple[str, str] = ("C", "D")
    nudge_rows: tuple[str, ...] = ("E", "F", "G")
    common_column: int = 12


class _BenchSMU(Virtual2450):
    """A virtual 2450 whose ``:READ?`` asks the bench (and whose lines are processed under the bench lock)."""

    def __init__(self, bench: SmuBench, role: str, faults: FaultPlan | None = None) -> None:
        super().__init__(faults=faults)
        self.bench = bench
        self.role = role

    def process(self, line: str) -> Reply:
        with self.bench.lock:
            return super().process(line)

    def reading(self) -> str:
        return self.bench.read(self)


class _BenchMatrix(Virtual707B):
    """The bench's 707B: a relay that changes state while an instrument on its row sources anything other than
    0 (the voltmeter's 0 A included as 0) is hot switching, which welds reed relays: an error, as an interlock
    would report it. The switch still happens (the damage is done)."""

    def __init__(self, bench: SmuBench, faults: FaultPlan | None = None) -> None:
        super().__init__(faults)
        self.bench = bench

    def process(self, line: str) -> Reply:
        with self.bench.lock:
            before = set(self.closed)
            reply = super().process(line)
            hot = self.bench.hot_rows(before ^ self.closed)
            if hot:
                self.errors.append((-200, f"Execution error; hot switching on rows {', '.join(hot)}"))
                self.bench.violations.append(f"hot switching on rows {', '.join(hot)}: {line}")
            return reply


class SmuBench:
    """One simulated network (any system with ``snapshot``/``program`` of a layered resistive network) on a bench.

    ``network`` must be a :class:`~aeqprop.simulators.resistive.ResistiveNetwork`; ``input_gain_v`` its input
    gain. ``faults`` maps instrument names (see :meth:`instruments`) to fault plans.
    """

    def __init__(self, network, *, input_gain_v: float, nudge_conductance_s: float, rate_s_per_vs: float = 100.0,
                 threshold_v: float = 0.5, wiring: BenchWiring | None = None,
                 faults: dict[str, FaultPlan] | None = None, max_pulse_width_s: float | None = None) -> None:
        self.network = network
        self.gain = float(input_gain_v)
        self.beta = float(nudge_conductance_s)
        self.rate = float(rate_s_per_vs)
        self.threshold_v = float(threshold_v)
        self.wiring = wiring or BenchWiring()
        self.lock = threading.RLock()
        #: Interlock: a pulse longer than this (delay + aperture) is refused with an error.
        self.max_pulse_width_s = max_pulse_width_s
        #: Every physics violation seen (hot switching, source contention, pulse too long), for tests to read.
        self.violations: list[str] = []
        faults = faults or {}
        spec = network.spec
        self.sizes = [2 * spec.n_inputs] + [spec.params[f"g{k}"].shape[1] for k in range(1, self._depth(spec) + 1)]
        if len(self.wiring.layer_slots) != len(self.sizes) or len(self.wiring.nudge_rows) < spec.n_outputs:
            raise ValueError("bench wiring: one slot per layer and one nudge row per output are needed")
        self.sources = [_BenchSMU(self, f"source{i}", faults.get(f"source{i}")) for i in range(self.sizes[0])]
        self.nudgers = [_BenchSMU(self, f"nudge{k}", faults.get(f"nudge{k}")) for k in range(spec.n_outputs)]
        self.biases = [_BenchSMU(self, f"bias{n}", faults.get(f"bias{n}")) for n in range(sum(self.sizes[1:]))]
        self.meter = _BenchSMU(self, "meter", faults.get("meter"))
        self.pulser = _BenchSMU(self, "pulser", faults.get("pulser"))
        self.matrix = _BenchMatrix(self, faults.get("matrix"))
        self.relaxations = 0
        self._params_version = 0
        self._relaxed_key: tuple | None = None
        self._nodes: list[np.ndarray] = []

    @staticmethod
    def _depth(spec) -> int:
        return sum(1 for name in spec.params if name.startswith("g"))

    def instruments(self) -> dict[str, Virtual2450 | Virtual707B]:
        """Every instrument by name: source0.., nudge0.., bias0.., meter, pulser, matrix (the order of ports)."""
        named: dict[str, Virtual2450 | Virtual707B] = {s.role: s for s in self.sources}
        named.update({n.role: n for n in self.nudgers})
        named.update({b.role: b for b in self.biases})
        named.update(meter=self.meter, pulser=self.pulser, matrix=self.matrix)
        return named

    # --- wiring ---------------------------------------------------------------------------------------------
    def _line(self, crosspoint: str) -> tuple[int, int] | None:
        """(layer, node) of the column a crosspoint reaches; (-1, 0) is circuit common; None: not a network line."""
        slot, column = int(crosspoint[0]), int(crosspoint[2:])
        if column == self.wiring.common_column:
            return (-1, 0)
        if slot not in self.wiring.layer_slots:
            return None
        layer = self.wiring.layer_slots.index(slot)
        return (layer, column - 1) if column <= self.sizes[layer] else None

    def _row(self, row: str) -> list[str]:
        return sorted(c for c in self.matrix.closed if c[1] == row)

    def _nudge_state(self) -> np.ndarray | None:
        """Target voltages when every nudge relay is closed and every nudge source on; None when all are open."""
        out_slot = self.wiring.layer_slots[-1]
        wanted = [f"{out_slot}{self.wiring.nudge_rows[k]}{k + 1:02d}" for k in range(len(self.nudgers))]
        closed = [c in self.matrix.closed for c in wanted]
        stray = [c for row in self.wiring.nudge_rows for c in self._row(row) if c not in wanted]
        if stray or (any(closed) and not all(closed)):
            raise _BenchError("nudge relays partly closed or miswired; the simulated network nudges all outputs")
        if not any(closed):
            return None
        if not all(n.output and n.function == "VOLT" for n in self.nudgers):
            raise _BenchError("a nudge source is off or not sourcing voltage")
        return np.array([n.level_v for n in self.nudgers])

    def hot_rows(self, changed: set[str]) -> list[str]:
        """Rows among ``changed`` crosspoints whose instrument is sourcing something other than 0 right now."""
        w = self.wiring
        rows = {c[1] for c in changed if len(c) >= 2}
        hot = []
        for row in sorted(rows):
            if row in w.meter_rows:
                m = self.meter
                live = m.output and not (m.function == "CURR" and m.level_a == 0.0)
            elif row in w.pulser_rows:
                live = self.pulser.output
            elif row in w.nudge_rows[: len(self.nudgers)]:
                n = self.nudgers[w.nudge_rows.index(row)]
                live = n.output and n.level_v != 0.0
            else:
                live = False
            if live:
                hot.append(row)
        return hot

    # --- physics ---------------------------------------------------------------------------------------------
    def _settle(self) -> None:
        if not all(s.output and s.function == "VOLT" for s in self.sources):
            raise _BenchError("an input line is not driven (source off or not sourcing voltage)")
        levels = np.array([s.level_v for s in self.sources])
        half = self.sizes[0] // 2
        if not np.array_equal(levels[half:], -levels[:half]):
            raise _BenchError("the simulated network needs the minus lines at exactly -1 x the plus lines")
        target = self._nudge_state()
        bias = np.array([b.level_a if b.output and b.function == "CURR" else 0.0 for b in self.biases])
        key = (levels.tobytes(), None if target is None else target.tobytes(), bias.tobytes(), self._params_version)
        if key == self._relaxed_key:
            return
        net = self.network
        self._set_biases(bias)
        net.clamp((levels[:half] / self.gain)[None, :])
        if target is None:
            net.nudge(0.0)
        else:
            net.nudge(self.beta, target[None, :])
        net.relax()
        self.relaxations += 1
        state = net.snapshot()
        layers = [state[f"state.{i}"][0] for i in range(len(self.sizes) - 1)]
        self._nodes = [levels, *layers]
        self._relaxed_key = key

    def _set_biases(self, bias: np.ndarray) -> None:
        """Make the network's bias currents equal the bias sources' levels (exactly, not by increments)."""
        snap = self.network.snapshot()
        start, changed = 0, False
        for k, size in enumerate(self.sizes[1:], start=1):
            wanted = bias[start : start + size]
            if not np.array_equal(snap[f"param.b{k}"], wanted):
                snap[f"param.b{k}"] = wanted.copy()
                changed = True
            start += size
        if changed:
            self.network.restore(snap)

    def _voltage(self, line: tuple[int, int]) -> float:
        layer, node = line
        return 0.0 if layer < 0 else float(self._nodes[layer][node])

    def read(self, smu: _BenchSMU) -> str:
        """The reply to ``:READ?`` of ``smu``; an impossible reading queues an error and prints OVERFLOW."""
        try:
            if smu is self.meter:
                return repr(self._meter_reading())
            if smu is self.pulser:
                return repr(self._pulse())
            return repr(0.0)  # input and nudge sources: their currents are not modelled
        except (_BenchError, AeqpropError, ValueError) as exc:
            smu.errors.append((-200, f"Execution error; {exc}"))
            return OVERFLOW

    def _pair(self, rows: tuple[str, str], who: str) -> tuple[tuple[int, int], tuple[int, int]]:
        hi, lo = self._row(rows[0]), self._row(rows[1])
        if len(hi) != 1 or len(lo) != 1:
            raise _BenchError(f"{who}: HI and LO must each reach exactly one line (rows {rows}: {hi}, {lo})")
        a, b = self._line(hi[0]), self._line(lo[0])
        if a is None or b is None:
            raise _BenchError(f"{who}: {hi[0]} or {lo[0]} reaches no network line")
        return a, b

    def _meter_reading(self) -> float:
        m = self.meter
        if not (m.output and m.function == "CURR" and m.level_a == 0.0 and m.sense == "VOLT"):
            raise _BenchError("the meter is not a voltmeter (source 0 A, sense VOLT, output on)")
        hi, lo = self._pair(self.wiring.meter_rows, "meter")
        self._settle()
        volts = self._voltage(hi) - self._voltage(lo)
        return max(-m.vlim_v, min(m.vlim_v, volts))

    def _pulse(self) -> float:
        p = self.pulser
        if not (p.output and p.function == "VOLT" and p.sense == "CURR"):
            raise _BenchError("the pulser is not a voltage source measuring current with its output on")
        (la, i), (lb, j) = self._pair(self.wiring.pulser_rows, "pulser")
        if la < 0 or lb != la + 1:
            raise _BenchError("pulser: HI must reach a line of layer l-1 and LO a node of layer l (one device)")
        if la == 0 and self.sources[i].output:
            self.violations.append(f"source contention on input line {i}")
            raise _BenchError(f"source contention: the pulser drives input line {i} while its source is on")
        width = p.delay_s + p.aperture_s  # on from the source delay through the end of the reading
        if self.max_pulse_width_s is not None and width > self.max_pulse_width_s:
            self.violations.append(f"pulse of {width!r} s")
            raise _BenchError(f"pulse of {width!r} s exceeds the interlock's {self.max_pulse_width_s!r} s")
        if p.autorange:
            self.violations.append("autorange during a pulse")
            raise _BenchError("autorange during a pulse: the width would depend on range changes")
        name = f"g{lb}"
        g = float(self.network.read_params()[name][i, j])
        volts = p.level_v
        amps = max(-p.ilim_a, min(p.ilim_a, g * volts))
        drive = abs(volts) - self.threshold_v
        if drive > 0:
            delta = np.zeros(self.network.spec.params[name].shape)
            delta[i, j] = math.copysign(self.rate * width * drive, volts)
            self.network.program({name: delta})
            self._params_version += 1
        return amps


class _BenchError(Exception):
    """The bench cannot make this reading in its present wiring state."""
