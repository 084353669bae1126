"""Keysight B2900 series precision SMU (B2901A/B2902A/B2911A/B2912A…), SCPI, one channel.

Commands from the *Keysight B2900 Series SMU Programming Guide* (B2910-90030), "Subsystem command reference":
``:SOURce[c]:FUNCtion:MODE VOLTage``, ``:SOURce[c]:FUNCtion:SHAPe PULSe|DC``, ``:SOURce[c]:VOLTage`` (base
level in pulse mode), ``:SOURce[c]:VOLTage:TRIGgered`` (pulse peak), ``:SOURce[c]:PULSe:DELay`` and
``:PULSe:WIDTh``, ``:SOURce[c]:LIST:VOLTage`` with ``:SOURce[c]:VOLTage:MODE LIST`` (list sweep),
``:SENSe[c]:FUNCtion "CURR"``, ``:SENSe[c]:CURRent:PROTection`` (compliance), ``:TRIGger[c]:SOURce``,
``:TRIGger[c]:TIMer``, ``:TRIGger[c]:COUNt``, ``:TRIGger[c]:ACQuire:DELay``, ``:OUTPut[c]``,
``:INITiate (@c)``, ``:FETCh:ARRay:CURRent? (@c)``, ``:MEASure:CURRent? (@c)``, ``:SYSTem:ERRor?``.
"""

from __future__ import annotations

import numpy as np

from .base import Limits, fmt, fmt_list, parse_floats
from .smu import SourceMeter
from .transport import Transport

__all__ = ["KeysightB2900"]


class KeysightB2900(SourceMeter):
    """One channel of a B2900 as a voltage source measuring current, with hardware pulse mode.

    A pulse (or train) rises from a base of 0 V (``:SOUR:VOLT 0``) to ``:SOUR:VOLT:TRIG``; the reading integrates
    over the aperture (``:SENS:CURR:APER``) on a fixed range (autorange off) and starts ``:TRIG:ACQ:DEL`` after the
    pulse does, so it ends with it: width = delay + aperture. Afterwards the channel returns to DC shape with the
    triggered level at 0 V and autorange on, so no later measurement can fire another pulse.
    """

    model_marker = r"B29\d\d"

    def __init__(self, transport: Transport, name: str = "b2900", limits: Limits | None = None,
                 channel: int = 1) -> None:
        if channel not in (1, 2):
            raise ValueError(f"{name}: channel must be 1 or 2, got {channel!r}")
        super().__init__(transport, name, limits)
        self.channel = channel

    def min_aperture_s(self) -> float:
        return 8e-6  # the B2900's shortest aperture (s)

    def _configure_commands(self, compliance_a: float, range_v: float | None) -> list[str]:
        c = self.channel
        rng = f":SOUR{c}:VOLT:RANG:AUTO ON" if range_v is None else f":SOUR{c}:VOLT:RANG {fmt(range_v)}"
        return [
            "*RST",
            f":SOUR{c}:FUNC:MODE VOLT",
            f":SOUR{c}:FUNC:SHAP DC",
            rng,
            f':SENS{c}:FUNC "CURR"',
            f":SENS{c}:CURR:PROT {fmt(compliance_a)}",
            f":SENS{c}:CURR:RANG:AUTO ON",
        ]

    def _set_voltage_command(self, volts: float) -> str:
        return f":SOUR{self.channel}:VOLT {fmt(volts)}"

    def _output_command(self, on: bool) -> str:
        return f":OUTP{self.channel} {'ON' if on else 'OFF'}"

    def _measure_command(self) -> str:
        return f":MEAS:CURR? (@{self.channel})"

    def _pulse_and_read(self, volts: float, width_s: float) -> float:
        c = self.channel
        self.write_all([
            f":SOUR{c}:FUNC:SHAP PULS",
            f":SOUR{c}:VOLT:MODE FIX",
            f":SOUR{c}:VOLT 0.0",
            f":SOUR{c}:VOLT:TRIG {fmt(volts)}",
            *self._pulse_timing_commands(width_s),
            f":TRIG{c}:SOUR AINT",
            f":TRIG{c}:COUN 1",
        ], "pulse setup")
        return float(self._run_and_fetch(1)[0])

    def _pulse_train(self, levels: np.ndarray, width_s: float, period_s: float) -> np.ndarray:
        c = self.channel
        self.write_all([
            f":SOUR{c}:FUNC:SHAP PULS",
            f":SOUR{c}:VOLT 0.0",
            f":SOUR{c}:VOLT:MODE LIST",
            f":SOUR{c}:LIST:VOLT {fmt_list(levels)}",
            *self._pulse_timing_commands(width_s),
            f":TRIG{c}:SOUR TIM",
            f":TRIG{c}:TIM {fmt(period_s)}",
            f":TRIG{c}:COUN {len(levels)}",
        ], "pulse-train setup")
        return self._run_and_fetch(len(levels))

    def _pulse_timing_commands(self, width_s: float) -> list[str]:
        c = self.channel
        delay, aperture = self.pulse_timing(width_s)
        return [
            f":SOUR{c}:PULS:DEL 0.0",
            f":SOUR{c}:PULS:WIDT {fmt(width_s)}",
            f":SENS{c}:CURR:RANG:AUTO OFF",
            f":SENS{c}:CURR:RANG {fmt(self._require_compliance('to pulse'))}",
            f":SENS{c}:CURR:APER {fmt(aperture)}",
            f":TRIG{c}:ACQ:DEL {fmt(delay)}",
        ]

    def _run_and_fetch(self, count: int) -> np.ndarray:
        c = self.channel
        self.write(f":OUTP{c} ON")
        try:
            self.write(f":INIT (@{c})")
            command = f":FETC:ARR:CURR? (@{c})"
            currents = parse_floats(self.query(command), count, self.name, command)
        finally:
            self.write(f":OUTP{c} OFF")
            # Back to DC with the triggered level at 0 V: a later measurement cannot fire another pulse.
            self.write(f":SOUR{c}:FUNC:SHAP DC")
            self.write(f":SOUR{c}:VOLT:MODE FIX")
            self.write(f":SOUR{c}:VOLT:TRIG 0.0")
            self.write(f":SENS{c}:CURR:RANG:AUTO ON")
        self.check_errors("pulse")
        return currents
