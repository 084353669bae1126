"""Keithley 2600B System SourceMeter (TSP), one channel (``smua`` or ``smub``).

Commands from the *Series 2600B System SourceMeter Instrument Reference Manual* (2600BS-901-01), section 7
"TSP command reference": ``smuX.reset()``, ``smuX.source.func = smuX.OUTPUT_DCVOLTS``,
``smuX.source.autorangev``/``rangev``, ``smuX.source.limiti`` (compliance), ``smuX.source.levelv``,
``smuX.measure.autorangei``, ``smuX.source.output = smuX.OUTPUT_ON/OFF``, ``smuX.measure.i()``.
Pulse trains run as one batched script on the instrument (``loadandrunscript`` … ``endscript``): a list
sweep whose source and end-pulse events are paced by ``trigger.timer[1]`` (period) and ``trigger.timer[2]``
(width), with ``smuX.trigger.endpulse.action = smuX.SOURCE_IDLE``; the manual's "Pulse mode sweeps"
section describes this trigger model. The measurement is started by its own stimulus, ``trigger.timer[3]``
(``smuX.trigger.measure.stimulus``), ``delay`` after the pulse starts, and integrates for the aperture
(``smuX.measure.nplc``) on a fixed range (``smuX.measure.autorangei`` off, ``rangei`` = compliance), so it ends
when the pulse does: width = delay + aperture, the value checked against ``max_pulse_width_s``. The idle level
between pulses, ``smuX.source.levelv``, is set to 0 V first. The readings come back in one ``printbuffer`` reply.
"""

from __future__ import annotations

import numpy as np

from aeqprop.system import InstrumentFault

from .base import Limits, fmt, parse_floats
from .smu import SourceMeter
from .transport import Transport
from .tsp import TspInstrument

__all__ = ["Keithley2600"]


class Keithley2600(TspInstrument, SourceMeter):
    """One SMU channel of a 2600B as a voltage source measuring current."""

    model_marker = r"MODEL 26\d\dB?\b"
    nplc_range = (0.001, 25.0)

    def __init__(self, transport: Transport, name: str = "k2600", limits: Limits | None = None,
                 channel: str = "a") -> None:
        if channel not in ("a", "b"):
            raise ValueError(f"{name}: channel must be 'a' or 'b', got {channel!r}")
        super().__init__(transport, name, limits)
        self.smu = f"smu{channel}"

    def _configure_commands(self, compliance_a: float, range_v: float | None) -> list[str]:
        s = self.smu
        rng = f"{s}.source.autorangev = {s}.AUTORANGE_ON" if range_v is None else f"{s}.source.rangev = {fmt(range_v)}"
        return [
            f"{s}.reset()",
            f"{s}.source.func = {s}.OUTPUT_DCVOLTS",
            rng,
            f"{s}.source.limiti = {fmt(compliance_a)}",
            f"{s}.measure.autorangei = {s}.AUTORANGE_ON",
        ]

    def _set_voltage_command(self, volts: float) -> str:
        return f"{self.smu}.source.levelv = {fmt(volts)}"

    def _output_command(self, on: bool) -> str:
        return f"{self.smu}.source.output = {self.smu}.OUTPUT_{'ON' if on else 'OFF'}"

    def _measure_command(self) -> str:
        return f"print({self.smu}.measure.i())"

    def _pulse_and_read(self, volts: float, width_s: float) -> float:
        return float(self._pulse_train(np.array([volts]), width_s, 2 * width_s)[0])

    def pulse_script(self, levels: np.ndarray, width_s: float, period_s: float) -> list[str]:
        """The batched TSP lines of one pulse train (sent between ``loadandrunscript`` and ``endscript``)."""
        s, n = self.smu, len(levels)
        compliance = getattr(self, "compliance_a", None)
        if compliance is None:
            raise InstrumentFault(f"{self.name}: configure_voltage_source() before pulsing")
        delay, aperture = self.pulse_timing(width_s)
        return [
            f"{s}.source.levelv = 0",
            f"{s}.measure.autorangei = {s}.AUTORANGE_OFF",
            f"{s}.measure.rangei = {fmt(compliance)}",
            f"{s}.measure.nplc = {fmt(aperture * self.line_frequency_hz)}",
            f"{s}.measure.delay = 0",
            f"{s}.nvbuffer1.clear()",
            f"{s}.trigger.source.listv({{{', '.join(fmt(v) for v in levels)}}})",
            f"{s}.trigger.source.limiti = {fmt(compliance)}",
            f"{s}.trigger.measure.action = {s}.ENABLE",
            f"{s}.trigger.measure.i({s}.nvbuffer1)",
            f"{s}.trigger.endpulse.action = {s}.SOURCE_IDLE",
            f"{s}.trigger.endsweep.action = {s}.SOURCE_IDLE",
            f"{s}.trigger.count = {n}",
            f"{s}.trigger.arm.count = 1",
            f"{s}.trigger.source.action = {s}.ENABLE",
            f"trigger.timer[1].delay = {fmt(period_s)}",
            f"trigger.timer[1].count = {max(n - 1, 1)}",
            "trigger.timer[1].passthrough = true",
            f"trigger.timer[1].stimulus = {s}.trigger.ARMED_EVENT_ID",
            f"{s}.trigger.source.stimulus = trigger.timer[1].EVENT_ID",
            f"trigger.timer[2].delay = {fmt(width_s)}",
            "trigger.timer[2].count = 1",
            "trigger.timer[2].passthrough = false",
            "trigger.timer[2].stimulus = trigger.timer[1].EVENT_ID",
            f"{s}.trigger.endpulse.stimulus = trigger.timer[2].EVENT_ID",
            f"trigger.timer[3].delay = {fmt(delay)}",
            "trigger.timer[3].count = 1",
            "trigger.timer[3].passthrough = false",
            "trigger.timer[3].stimulus = trigger.timer[1].EVENT_ID",
            f"{s}.trigger.measure.stimulus = trigger.timer[3].EVENT_ID",
            f"{s}.source.output = {s}.OUTPUT_ON",
            f"{s}.trigger.initiate()",
            "waitcomplete()",
            f"{s}.source.output = {s}.OUTPUT_OFF",
            f"{s}.measure.autorangei = {s}.AUTORANGE_ON",
        ]

    def _pulse_train(self, levels: np.ndarray, width_s: float, period_s: float) -> np.ndarray:
        lines = self.pulse_script(levels, width_s, period_s)
        self.write("loadandrunscript")
        for line in lines:
            self.write(line)
        self.write("endscript")
        command = f"printbuffer(1, {len(levels)}, {self.smu}.nvbuffer1.readings)"
        currents = parse_floats(self.query(command), len(levels), self.name, command)
        self.check_errors("pulse train")
        return currents
