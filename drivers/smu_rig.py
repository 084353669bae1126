"""A rig of source-measure units and a Keithley 707B switch matrix around a resistive crossbar network.

Declared in a protocol file (``[system] kind = "smu-rig"``; README, "SMU rig"). One SMU per input line
sources ``+gain*x`` and ``-gain*x``; nudge SMUs drive the outputs through a nudge resistor of conductance
``nudge_conductance_s`` (that conductance *is* beta, so only one-sided EP with that beta is possible: a
resistor cannot be negative); a voltmeter SMU reads the outputs and the voltage drop across every device,
routed by the matrix; a pulse SMU programs one device at a time through the matrix and reads conductances
with a pulse below the devices' threshold. Every voltage, compliance and pulse is checked against
:class:`~aeqprop.drivers.base.Limits` before anything is sent; ``max_batch = 1``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from aeqprop.settings import Seconds, Section, SystemSettings, Timeout, Units
from aeqprop.system import (
    CapabilityError,
    InstrumentFault,
    LimitViolation,
    ParamSpec,
    RelaxReport,
    SystemSpec,
    check_shape,
    real_beta,
)

from .base import Instrument, Limits
from .keithley707b import Keithley707B
from .keithley2450 import Keithley2450
from .smu import SourceMeter
from .transport import TransportError, open_transport

__all__ = ["SMU_MODELS", "MatrixWiring", "SmuRig", "SmuRigConfig"]

log = logging.getLogger("aeqprop.drivers")

#: SMU drivers a rig may name (those with a voltmeter mode).
SMU_MODELS: dict[str, type[SourceMeter]] = {"keithley2450": Keithley2450}
#: A reading this large is a Keithley overflow (the instrument could not measure).
OVERFLOW_V = 9.9e37


class MatrixWiring(Section):
    """Which 707B rows reach which instrument and which slot holds each network layer (README, "SMU rig")."""

    model_config = ConfigDict(extra="forbid")

    layer_slots: list[int] | None = Field(default=None, description="Slot of each layer (input lines, hidden..., "
                                          "outputs); node i is on column i+1. Default 1, 2, 3, ...")
    meter_rows: tuple[str, str] = Field(
        default=("A", "B"), strict=False, description="Rows of the voltmeter's HI and LO."
    )
    pulser_rows: tuple[str, str] = Field(
        default=("C", "D"), strict=False, description="Rows of the pulse SMU's HI and LO."
    )
    nudge_rows: list[str] = Field(default=["E", "F", "G", "H"], description="Row of nudge source k (output k).")
    common_column: int = Field(default=12, ge=1, le=12, description="Column wired to circuit common on every slot.")


class SmuRigConfig(SystemSettings):
    """SMUs + a 707B around a layered resistive crossbar; parameters are the device conductances."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "source-measure units and a Keithley 707B switch matrix around a crossbar"

    kind: Literal["smu-rig"] = "smu-rig"
    inputs: Units = Field(description="Data features; each needs two source SMUs (+x and -x lines).")
    hidden: list[Units] = Field(description="Hidden layer sizes of the crossbar (nodes per layer).")
    outputs: Units = Field(description="Output nodes (classes); one nudge SMU each.")
    smu_model: Literal["keithley2450"] = Field(default="keithley2450", description="Driver of every SMU.")
    sources: list[str] = Field(description="VISA resources of the input-line SMUs: +x lines, then -x lines.")
    nudge: list[str] = Field(description="VISA resources of the nudge SMUs, one per output.")
    bias: list[str] = Field(default=[], description="VISA resources of the bias current sources, one per hidden "
                            "and output node in layer order; empty: a crossbar without biases.")
    meter: str = Field(description="VISA resource of the voltmeter SMU.")
    pulser: str = Field(description="VISA resource of the pulse SMU.")
    matrix: str = Field(description="VISA resource of the 707B.")
    visa_backend: str = Field(default="@py", description="pyvisa backend; @py is pyvisa-py.")
    timeout_s: Timeout = Field(default=5.0, description="Bound on every read and write.")
    wiring: MatrixWiring = Field(default_factory=MatrixWiring)
    input_gain_v: float = Field(gt=0, description="Volts per unit of input (the bench's gain).")
    input_range: float = Field(default=1.0, gt=0, description="Largest |input| the data presents.")
    nudge_conductance_s: float = Field(gt=0, description="Conductance of the nudge resistors: algorithm.beta.")
    compliance_a: float = Field(gt=0, description="Current compliance of every voltage source.")
    settle_time_s: Seconds = Field(default=0.0, description="Wait after changing inputs or nudge.")
    pulse_width_s: Timeout = Field(description="Width of every programming and read pulse (s), as the SMU times "
                                   "it: source delay + aperture of the reading taken during it.")
    line_frequency_hz: float = Field(
        default=50.0, gt=0, le=1000, description="Mains frequency: apertures are NPLC / this."
    )
    device_rate_s_per_vs: float = Field(gt=0, description="Device model: conductance change per volt above "
                                        "threshold per second of pulse (S/(V s)).")
    device_threshold_v: float = Field(gt=0, description="Pulses at or below this |V| leave a device unchanged.")
    read_voltage_v: float = Field(default=0.25, gt=0, description="Pulse used to read a conductance (below threshold).")
    limits: Limits = Field(description="Safety limits: checked here, at validation, and before every command.")

    @model_validator(mode="after")
    def _checks(self) -> SmuRigConfig:
        if len(self.sources) != 2 * self.inputs or len(self.nudge) != self.outputs:
            raise ValueError(f"need {2 * self.inputs} source resources (+x then -x lines) and {self.outputs} nudge "
                             f"resources, got {len(self.sources)} and {len(self.nudge)}")
        sizes = self.layer_sizes()
        if self.bias and len(self.bias) != sum(sizes[1:]):
            raise ValueError(f"need {sum(sizes[1:])} bias resources (hidden and output nodes) or none, "
                             f"got {len(self.bias)}")
        slots = self.slots()
        if len(slots) != len(sizes) or len(set(slots)) != len(slots) or not all(1 <= s <= 6 for s in slots):
            raise ValueError(f"wiring.layer_slots must name {len(sizes)} distinct slots 1-6")
        if max(sizes) >= self.wiring.common_column:
            raise ValueError(f"a slot holds at most {self.wiring.common_column - 1} lines (column "
                             f"{self.wiring.common_column} is common); layers are {sizes}")
        rows = [*self.wiring.meter_rows, *self.wiring.pulser_rows, *self.wiring.nudge_rows[: self.outputs]]
        if len(self.wiring.nudge_rows) < self.outputs or len(set(rows)) != len(rows) or not all(
                r in "ABCDEFGH" and len(r) == 1 for r in rows):
            raise ValueError("wiring rows must be distinct letters A-H, with one nudge row per output")
        if self.read_voltage_v >= self.device_threshold_v:
            raise ValueError("read_voltage_v must stay below device_threshold_v (reads must not program)")
        try:
            lim = self.limits
            lim.check_voltage(self.input_gain_v * self.input_range, "smu-rig", "input full scale")
            # Device drops reach twice the full scale (a +x line against a node pulled toward -x): the voltmeter
            # must read them without reaching its voltage limit.
            lim.check_voltage(2 * self.input_gain_v * self.input_range, "smu-rig", "largest device drop")
            lim.check_compliance(self.compliance_a, "smu-rig")
            lim.check_pulse(self.read_voltage_v, self.pulse_width_s, "smu-rig")
        except LimitViolation as exc:
            raise ValueError(str(exc).replace("; nothing was sent", "")) from None
        shortest = SMU_MODELS[self.smu_model].nplc_range[0] / self.line_frequency_hz
        if self.pulse_width_s < shortest:
            raise ValueError(f"pulse_width_s {self.pulse_width_s!r} s is shorter than the shortest pulse a "
                             f"{self.smu_model} can time ({shortest!r} s: delay + its shortest aperture)")
        if self.device_threshold_v >= self.limits.pulse_v:
            raise ValueError(f"device_threshold_v {self.device_threshold_v} V leaves no programming pulse below "
                             f"the limit {self.limits.pulse_v} V")
        return self

    def layer_sizes(self) -> list[int]:
        return [2 * self.inputs, *self.hidden, self.outputs]

    def slots(self) -> list[int]:
        return self.wiring.layer_slots or list(range(1, len(self.layer_sizes()) + 1))

    def capabilities(self) -> frozenset[str]:
        return SmuRig.CAPABILITIES

    def layer_count(self) -> int:
        """Weight layers: one per hidden layer, plus the output layer."""
        return len(self.hidden) + 1

    def feature_counts(self) -> tuple[int, int]:
        return self.inputs, self.outputs

    def max_batch(self) -> int:
        return 1

    def check_algorithm(self, algorithm: BaseModel) -> None:
        """A resistor nudge is one fixed positive beta: one-sided EP with beta = nudge_conductance_s only."""
        estimator, beta = getattr(algorithm, "estimator", None), getattr(algorithm, "beta", None)
        if estimator != "one-sided" or beta != self.nudge_conductance_s:
            raise ValueError(f"an smu-rig nudges through resistors of {self.nudge_conductance_s!r} S: it needs "
                             f"estimator 'one-sided' with beta = {self.nudge_conductance_s!r} (got {estimator!r}, "
                             f"beta {beta!r})")

    def build(self, rng: np.random.Generator) -> SmuRig:
        """Open every instrument, configure it and return the rig (``rng`` unused: parameters live on the devices)."""
        opened: list[Instrument] = []
        model = SMU_MODELS[self.smu_model]

        def connect(cls, resource: str, name: str) -> Instrument:
            try:
                link = open_transport(resource, "visa", timeout_s=self.timeout_s, backend=self.visa_backend)
            except TransportError as exc:
                raise InstrumentFault(f"smu-rig {name}: {exc}") from None
            instrument = cls(link, name, self.limits)
            if isinstance(instrument, SourceMeter):
                instrument.line_frequency_hz = self.line_frequency_hz
            opened.append(instrument)
            instrument.identify()  # *CLS (stale errors are not ours) and *IDN?: the model the driver speaks
            return instrument

        try:
            sources = [connect(model, r, f"source{i}") for i, r in enumerate(self.sources)]
            nudgers = [connect(model, r, f"nudge{k}") for k, r in enumerate(self.nudge)]
            biases = [connect(model, r, f"bias{n}") for n, r in enumerate(self.bias)]
            meter = connect(model, self.meter, "meter")
            pulser = connect(model, self.pulser, "pulser")
            matrix = connect(Keithley707B, self.matrix, "matrix")
            return SmuRig(self, sources, nudgers, biases, meter, pulser, matrix)
        except BaseException:
            _close_all([i for i in opened if not isinstance(i, Keithley707B)]  # sources off, then relays
                       + [i for i in opened if isinstance(i, Keithley707B)])
            raise


def _close_all(instruments: list[Instrument]) -> list[str]:
    """Outputs off and links released on every instrument that ever answered, in the order given; returns the
    failures (a dead link), each also logged."""
    failures = []
    for instrument in instruments:
        try:
            if instrument.replies:
                instrument.close()
            else:
                instrument.transport.close()
        except InstrumentFault as exc:
            log.error("could not switch %s off: %s", instrument.name, exc)
            failures.append(str(exc))
    return failures


class SmuRig:
    """The contract over SMUs and a 707B (capabilities ``local`` and ``program``; batch 1)."""

    CAPABILITIES = frozenset({"local", "program"})

    def __init__(self, config: SmuRigConfig, sources: list[SourceMeter], nudgers: list[SourceMeter],
                 biases: list[SourceMeter], meter: SourceMeter, pulser: SourceMeter, matrix: Keithley707B) -> None:
        self.config = config
        self.sources, self.nudgers, self.biases = sources, nudgers, biases
        self.meter, self.pulser, self.matrix = meter, pulser, matrix
        self.limits = config.limits
        self._sizes = config.layer_sizes()
        self._slots = config.slots()
        wiring = config.wiring
        out_slot = self._slots[-1]
        self._nudge_points = [f"{out_slot}{wiring.nudge_rows[k]}{k + 1:02d}" for k in range(config.outputs)]
        self._common = f"{self._slots[0]}{{row}}{wiring.common_column:02d}"
        depth = len(self._sizes) - 1
        self._names = [f"g{k}" for k in range(1, depth + 1)]
        self._shapes = {f"g{k}": (self._sizes[k - 1], self._sizes[k]) for k in range(1, depth + 1)}
        self._levels: np.ndarray | None = None
        self._nudged = False  # the phase asks for the nudge
        self._nudge_closed = False  # the nudge relays are closed
        self._target: np.ndarray | None = None
        self._has_target = False  # the nudge SMUs hold the last target until a new one is given
        self._closed = False
        params = {n: ParamSpec(s, (0.0, None), "S", k + 1) for k, (n, s) in enumerate(self._shapes.items())}
        #: Bias currents as set (A), per layer; their sources are the instruments ``biases`` in layer order.
        self._bias: dict[str, np.ndarray] = {}
        if biases:
            for k in range(1, depth + 1):
                self._bias[f"b{k}"] = np.zeros(self._sizes[k])
                params[f"b{k}"] = ParamSpec((self._sizes[k],), (None, None), "A", k, "bias")
        self.spec = SystemSpec(
            n_inputs=config.inputs,
            n_outputs=config.outputs,
            params=params,
            capabilities=self.CAPABILITIES,
            max_batch=1,
            description=f"smu-rig: {len(sources) + len(nudgers) + len(biases) + 2} SMUs and a 707B around a "
                        f"{'-'.join(map(str, self._sizes))} crossbar",
        )
        self._configure()

    def _configure(self) -> None:
        cfg = self.config
        self.matrix.reset()
        for smu in [*self.sources, *self.nudgers]:
            smu.configure_voltage_source(cfg.compliance_a)
            smu.set_voltage(0.0)
            smu.enable_output()
        for smu in self.biases:
            smu.configure_current_source(self.limits.max_voltage_v)
            smu.enable_output()
        self.meter.configure_voltmeter(self.limits.max_voltage_v)
        self.meter.enable_output()
        self.pulser.configure_voltage_source(cfg.compliance_a)
        for smu in [*self.sources, *self.nudgers, *self.biases, self.meter]:
            smu.sync()  # every output is on before the first measurement can be made

    # --- wiring ----------------------------------------------------------------------------------------
    def _point(self, row: str, layer: int, node: int) -> str:
        return f"{self._slots[layer]}{row}{node + 1:02d}"

    def _route(self, points: list[str]) -> None:
        """Close exactly ``points`` plus the nudge relays while they are closed (they do not move)."""
        self.matrix.route(points + (self._nudge_points if self._nudge_closed else []))

    def _release_nudge(self) -> None:
        """Nudge sources to 0 V, then open their relays: a relay never switches with a source on it."""
        if not self._nudge_closed:
            return
        for smu in self.nudgers:
            smu.set_voltage(0.0)
        for smu in self.nudgers:
            smu.sync()
        self.matrix.open_all()
        self._nudge_closed = False

    def _measure(self, hi: str, lo: str) -> float:
        rows = self.config.wiring.meter_rows
        self._route([hi.format(row=rows[0]), lo.format(row=rows[1])])
        volts = self.meter.measure_voltage()
        if not abs(volts) < self.limits.max_voltage_v:
            if abs(volts) >= OVERFLOW_V:
                self.meter.check_errors("a voltage reading")
            raise InstrumentFault(f"meter: reading {volts!r} V is at its voltage limit or overflowed")
        return volts

    def _node(self, layer: int, node: int) -> str:
        return f"{self._slots[layer]}{{row}}{node + 1:02d}"

    # --- all systems -----------------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        check_shape("clamp", x, (1, self.spec.n_inputs))
        levels = self.config.input_gain_v * np.concatenate([x[0], -x[0]])
        self.limits.check_voltage(levels, "smu-rig", "input voltage")
        changed = [i for i in range(levels.size) if self._levels is None or levels[i] != self._levels[i]]
        for i in changed:
            self.sources[i].set_voltage(float(levels[i]))
        for i in changed:
            self.sources[i].sync()
        self._levels = levels

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        beta = real_beta(beta, "smu-rig")
        if beta == 0.0:
            self._nudged = False
            return
        if beta != self.config.nudge_conductance_s:
            raise CapabilityError(f"smu-rig: the nudge resistors fix beta = {self.config.nudge_conductance_s!r} "
                                  f"(asked for {beta!r})")
        if target is None:
            if not self._has_target:
                raise ValueError("nudge: a nonzero beta needs a target")
            self._nudged = True
            return
        target = np.asarray(target, dtype=np.float64)
        check_shape("nudge target", target, (1, self.spec.n_outputs))
        self.limits.check_voltage(target, "smu-rig", "nudge target voltage")
        self._target = target[0].copy()
        self._nudged = self._has_target = True

    def relax(self) -> RelaxReport:
        """Connect or disconnect the nudge resistors, then wait ``settle_time_s`` (the network settles by itself).

        Connecting: the nudge relays close with their sources at 0 V, and only then do the sources go to the
        target. Disconnecting: the sources go to 0 V first, then the relays open."""
        if self._nudged:
            if not self._nudge_closed:
                self.matrix.route(self._nudge_points)
                self._nudge_closed = True
            assert self._target is not None
            for smu, volts in zip(self.nudgers, self._target, strict=True):
                smu.set_voltage(float(volts))
            for smu in self.nudgers:
                smu.sync()
        elif self._nudge_closed:
            self._release_nudge()
        else:
            self.matrix.open_all()
        if self.config.settle_time_s:
            time.sleep(self.config.settle_time_s)
        return RelaxReport(sweeps=0, residual=0.0, settled=True)

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        common = self._common
        out = len(self._sizes) - 1
        values = [np.mean([self._measure(self._node(out, k), common) for _ in range(reads)])
                  for k in range(self.spec.n_outputs)]
        self.meter.check_errors("reading the outputs")  # the error queue, drained after every phase
        return np.array(values)[None, :]

    def snapshot(self) -> dict[str, np.ndarray]:
        return {f"param.{k}": v for k, v in self.read_params().items()}

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        """Program every device toward the snapshot's conductance (one correction from a fresh read)."""
        present = self.read_params()
        self.program({n: np.asarray(snapshot[f"param.{n}"]) - present[n] for n in self._names})
        if self._bias:
            self._set_biases({n: np.array(snapshot[f"param.{n}"], dtype=np.float64) for n in self._bias})

    def close(self) -> None:
        """Switch every SMU off first, then open every relay (no relay switches with a source on); once.

        Every instrument is tried; if any could not be switched off, InstrumentFault names them afterwards."""
        if self._closed:
            return
        self._closed = True
        failures = []
        for instrument in [*self.sources, *self.nudgers, *self.biases, self.meter, self.pulser, self.matrix]:
            try:  # errors queued since the last phase (e.g. during evaluation) still fail the run
                if instrument.replies:
                    instrument.check_errors("the run, before closing")
            except InstrumentFault as exc:
                failures.append(str(exc))
        failures += _close_all([self.pulser, *self.nudgers, *self.sources, *self.biases, self.meter, self.matrix])
        if failures:
            raise InstrumentFault("smu-rig: " + "; ".join(failures)[:400])

    # --- local / program -------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        """½ΔV² of every device from its measured voltage drop (HI on the pre line, LO on the post node)."""
        local = {}
        for k, name in enumerate(self._names, start=1):
            n_pre, n_post = self._shapes[name]
            drops = np.empty((n_pre, n_post))
            for i in range(n_pre):
                for j in range(n_post):
                    drops[i, j] = np.mean([self._measure(self._node(k - 1, i), self._node(k, j))
                                           for _ in range(reads)])
            local[name] = 0.5 * drops * drops
        common = self._common
        for k, name in enumerate(self._bias, start=1):
            local[name] = -np.array([np.mean([self._measure(self._node(k, j), common) for _ in range(reads)])
                                     for j in range(self._sizes[k])])
        self.meter.check_errors("reading the local terms")
        return local

    def _pulses(self, delta: float) -> list[float]:
        """Amplitudes whose threshold-exceeding parts add up to ``delta`` siemens, each within the pulse limit."""
        cfg = self.config
        drive = abs(delta) / (cfg.device_rate_s_per_vs * cfg.pulse_width_s)
        per_pulse = self.limits.pulse_v - cfg.device_threshold_v
        count = max(1, math.ceil(drive / per_pulse))
        return [math.copysign(cfg.device_threshold_v + drive / count, delta)] * count

    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        unknown = set(delta) - set(self._names) - set(self._bias)
        if unknown:
            raise KeyError(f"program: unknown parameters {sorted(unknown)}")
        levels = {}
        for name, present in self._bias.items():
            step = np.asarray(delta.get(name, np.zeros_like(present)), dtype=np.float64)
            check_shape(f"program {name}", step, present.shape)
            levels[name] = present + step
            self.limits.check_current(levels[name], "smu-rig", f"bias current {name}")
        plan: list[tuple[str, int, int, list[float]]] = []
        for name in self._names:
            if name not in delta:
                continue
            step = np.asarray(delta[name], dtype=np.float64)
            check_shape(f"program {name}", step, self._shapes[name])
            for (i, j), value in np.ndenumerate(step):
                if value != 0.0:
                    plan.append((name, i, j, self._pulses(float(value))))
        amplitudes = [v for *_, pulses in plan for v in pulses]
        self.limits.check_pulse(np.array(amplitudes), self.config.pulse_width_s, "smu-rig")
        self._set_biases(levels)
        self._release_nudge()
        rows = self.config.wiring.pulser_rows
        isolated: int | None = None
        for name, i, j, pulses in plan:
            k = self._names.index(name) + 1
            isolated = self._isolate_input(i if k == 1 else None, isolated)
            self.matrix.route([self._point(rows[0], k - 1, i), self._point(rows[1], k, j)])
            for volts in pulses:
                self._pulse(volts)
        self._isolate_input(None, isolated)
        self.pulser.check_errors("programming")

    def _isolate_input(self, line: int | None, isolated: int | None) -> int | None:
        """Switch off the source of input ``line`` before the pulser is routed onto it (never two sources on one
        line), and restore the previously isolated one with the pulser's relays open; returns ``line``."""
        if line == isolated:
            return isolated
        if isolated is not None:
            self.matrix.open_all()  # the pulser (off) leaves the line before its source comes back
            source = self.sources[isolated]
            source.enable_output()
            level = 0.0 if self._levels is None else float(self._levels[isolated])
            if level:
                source.set_voltage(level)
            source.sync()
        if line is not None:
            source = self.sources[line]
            source.set_voltage(0.0)
            source.output_off()
            source.sync()
        return line

    def _set_biases(self, levels: Mapping[str, np.ndarray]) -> None:
        """Set every bias source whose level changes (limits already checked by the caller), then wait for them."""
        changed = []
        start = 0
        for name, present in self._bias.items():
            wanted = levels.get(name, present)
            self.limits.check_current(wanted, "smu-rig", f"bias current {name}")
            for j in np.flatnonzero(wanted != present):
                self.biases[start + j].set_current(float(wanted[j]))
                changed.append(self.biases[start + j])
            self._bias[name] = wanted
            start += present.size
        for smu in changed:
            smu.sync()

    def _pulse(self, volts: float) -> float:
        amps = self.pulser.pulse_and_read(volts, self.config.pulse_width_s)
        if not abs(amps) < self.config.compliance_a:
            self.pulser.check_errors("a pulse")
            raise InstrumentFault(f"pulser: current {amps!r} A at {volts!r} V reached compliance or overflowed")
        return amps

    def read_params(self) -> dict[str, np.ndarray]:
        """Conductances from a read pulse below threshold across each device (g = I / V); bias currents as set."""
        rows = self.config.wiring.pulser_rows
        read_v = self.config.read_voltage_v
        params = {}
        self._release_nudge()
        isolated: int | None = None
        for k, name in enumerate(self._names, start=1):
            g = np.empty(self._shapes[name])
            for i, j in np.ndindex(*g.shape):
                isolated = self._isolate_input(i if k == 1 else None, isolated)
                self.matrix.route([self._point(rows[0], k - 1, i), self._point(rows[1], k, j)])
                g[i, j] = self._pulse(read_v) / read_v
            params[name] = g
        self._isolate_input(None, isolated)
        params.update({name: level.copy() for name, level in self._bias.items()})
        self.pulser.check_errors("reading the conductances")
        return params

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the smu rig has no homeostatic control knobs")
