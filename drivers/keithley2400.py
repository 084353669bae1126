"""Keithley 2400 SourceMeter (SCPI).

Commands from the *2400 Series SourceMeter User's Manual* (2400S-900-01), section 18 "SCPI Command
Reference": ``:SOURce:FUNCtion VOLTage``, ``:SOURce:VOLTage:MODE FIXed``, ``:SOURce:VOLTage:RANGe``,
``:SOURce:VOLTage[:LEVel]``, ``:SENSe:FUNCtion "CURRent"``, ``:SENSe:CURRent:PROTection`` (compliance),
``:FORMat:ELEMents CURRent``, ``:OUTPut[:STATe]``, ``:READ?``, ``:SYSTem:ERRor?`` (``0,"No error"``).
Pulses use the source-delay-measure cycle with auto output-off (``:SOURce:CLEar:AUTO ON``): the output turns
on, waits ``:SOURce:DELay``, measures and turns off, so the pulse lasts the delay plus the integration time
(``:SENSe:CURRent:NPLCycles``, on a fixed range ``:SENSe:CURRent:RANGe``): both are set for every pulse so that
delay + aperture is the width checked against ``max_pulse_width_s``.
"""

from __future__ import annotations

from .base import fmt
from .smu import SourceMeter

__all__ = ["Keithley2400"]


class Keithley2400(SourceMeter):
    """Keithley 2400 (and 2401/2410/2420/2425/2430/2440 in DC mode) as a voltage source measuring current."""

    model_marker = r"MODEL 24[0-4]\d\b"

    def _configure_commands(self, compliance_a: float, range_v: float | None) -> list[str]:
        rng = ":SOUR:VOLT:RANG:AUTO ON" if range_v is None else f":SOUR:VOLT:RANG {fmt(range_v)}"
        return [
            "*RST",
            ":SOUR:FUNC VOLT",
            ":SOUR:VOLT:MODE FIXED",
            rng,
            ':SENS:FUNC "CURR"',
            f":SENS:CURR:PROT {fmt(compliance_a)}",
            ":FORM:ELEM CURR",
        ]

    def _set_voltage_command(self, volts: float) -> str:
        return f":SOUR:VOLT:LEV {fmt(volts)}"

    def _output_command(self, on: bool) -> str:
        return ":OUTP ON" if on else ":OUTP OFF"

    def _measure_command(self) -> str:
        return ":READ?"

    def _pulse_and_read(self, volts: float, width_s: float) -> float:
        delay, aperture = self.pulse_timing(width_s)
        self.write(f":SENS:CURR:RANG {fmt(self._require_compliance('to pulse'))}")  # a fixed range: autorange off
        self.write(f":SENS:CURR:NPLC {fmt(aperture * self.line_frequency_hz)}")
        self.write(":SOUR:CLE:AUTO ON")
        self.write(f":SOUR:DEL {fmt(delay)}")
        self.write(f":SOUR:VOLT:LEV {fmt(volts)}")
        current = self.query_float(":READ?")
        self.write(":SOUR:CLE:AUTO OFF")
        self.write(":SOUR:VOLT:LEV 0.0")
        return current
