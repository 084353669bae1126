"""Keithley 2450 SourceMeter (SCPI command set).

Commands from the *Model 2450 Reference Manual* (2450-901-01), section 6 "SCPI command reference":
``:SOURce:FUNCtion VOLT``, ``:SOURce:VOLTage:RANGe[:AUTO]``, ``:SOURce:VOLTage:ILIMit`` (current limit of a
voltage source), ``:SOURce:VOLTage[:LEVel]``, ``:SOURce:VOLTage:DELay``, ``:SENSe:FUNCtion "CURR"``,
``:SENSe:CURRent:RANGe:AUTO``, ``:SOURce:FUNCtion CURR``, ``:SOURce:CURRent[:LEVel]``, ``:SOURce:CURRent:VLIMit``
(voltage limit of a current source), ``:SENSe:FUNCtion "VOLT"``, ``:SENSe:VOLTage:RANGe:AUTO``, ``*OPC?``,
``:OUTPut[:STATe]``, ``:READ?``, ``:SYSTem:ERRor[:NEXT]?``, ``:SENSe:CURRent:NPLCycles``, ``:SENSe:CURRent:RANGe``.
The 2450 has no hardware pulse mode in this driver: a pulse is one compound message ``:OUTP ON;:READ?;:OUTP OFF``
executed in order by the instrument, so the output is on for the source delay plus the aperture (NPLC / line
frequency) of a reading on a fixed current range, and goes off as soon as the reading is taken, without waiting
for the link. Width = delay + aperture is what :class:`~aeqprop.drivers.smu.SourceMeter` checks against
``max_pulse_width_s``; the shortest is 0.01 PLC (0.2 ms at 50 Hz).
"""

from __future__ import annotations

from .base import fmt
from .smu import SourceMeter

__all__ = ["Keithley2450"]


class Keithley2450(SourceMeter):
    """Keithley 2450 as a voltage source measuring current."""

    model_marker = r"MODEL 2450\b"

    def _configure_commands(self, compliance_a: float, range_v: float | None) -> list[str]:
        rng = ":SOUR:VOLT:RANG:AUTO ON" if range_v is None else f":SOUR:VOLT:RANG {fmt(range_v)}"
        return [
            "*RST",
            ":SOUR:FUNC VOLT",
            rng,
            f":SOUR:VOLT:ILIM {fmt(compliance_a)}",
            ':SENS:FUNC "CURR"',
            ":SENS:CURR:RANG:AUTO ON",
        ]

    def _voltmeter_commands(self, limit_v: float) -> list[str]:
        return self._current_source_commands(limit_v)

    def _current_source_commands(self, limit_v: float) -> list[str]:
        return [
            "*RST",
            ":SOUR:FUNC CURR",
            ":SOUR:CURR 0.0",
            f":SOUR:CURR:VLIM {fmt(limit_v)}",
            ':SENS:FUNC "VOLT"',
            ":SENS:VOLT:RANG:AUTO ON",
        ]

    def _set_current_command(self, amps: float) -> str:
        return f":SOUR:CURR {fmt(amps)}"

    def _set_voltage_command(self, volts: float) -> str:
        return f":SOUR:VOLT {fmt(volts)}"

    def _output_command(self, on: bool) -> str:
        return ":OUTP ON" if on else ":OUTP OFF"

    def _measure_command(self) -> str:
        return ":READ?"

    def _pulse_and_read(self, volts: float, width_s: float) -> float:
        delay, aperture = self.pulse_timing(width_s)
        self.write(f":SENS:CURR:RANG {fmt(self._require_compliance('to pulse'))}")  # a fixed range: autorange off
        self.write(f":SENS:CURR:NPLC {fmt(aperture * self.line_frequency_hz)}")
        self.write(f":SOUR:VOLT:DEL {fmt(delay)}")
        self.write(f":SOUR:VOLT {fmt(volts)}")
        try:
            current = self.query_float(":OUTP ON;:READ?;:OUTP OFF")
        except BaseException:
            self.write(":OUTP OFF")
            raise
        self.write(":SOUR:VOLT 0.0")
        return current
