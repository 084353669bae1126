"""What every source-measure unit offers a crossbar experiment, with limits checked before each command.

Subclasses supply the command strings of their programming manual; this base owns the order of checks:
a value is validated against :class:`~aeqprop.drivers.base.Limits` first, and only then formatted and sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aeqprop.system import LimitViolation

from .base import Instrument

__all__ = ["SourceMeter"]


class SourceMeter(Instrument):
    """Source voltage, measure current: configure, set, output on/off, measure, pulse, pulse-and-read."""

    #: Current compliance (A) set by :meth:`configure_voltage_source`; None until then.
    compliance_a: float | None = None
    #: Whether a compliance (current limit, or voltage limit of a current source) was sent since the last reset:
    #: no output goes on before it is.
    compliance_sent: bool = False
    #: Mains frequency (Hz): integration times in NPLC are multiples of its period.
    line_frequency_hz: float = 50.0
    #: Shortest and longest integration the model allows, in power-line cycles.
    nplc_range: tuple[float, float] = (0.01, 10.0)

    def min_aperture_s(self) -> float:
        return self.nplc_range[0] / self.line_frequency_hz

    def pulse_timing(self, width_s: float) -> tuple[float, float]:
        """(source delay, aperture) of a pulse that the instrument times as ``width_s`` = delay + aperture.

        The reading integrates over the second half of the pulse (within the model's aperture range); a width
        shorter than the shortest aperture cannot be timed by the instrument and is refused."""
        low, high = self.min_aperture_s(), self.nplc_range[1] / self.line_frequency_hz
        if not width_s >= low:
            raise LimitViolation(f"{self.name}: pulse width {width_s!r} s is shorter than the shortest aperture "
                                 f"{low!r} s this instrument can time; nothing was sent")
        aperture = min(max(width_s / 2, low), high)
        return width_s - aperture, aperture

    def _require_compliance(self, what: str) -> float:
        if not self.compliance_sent:
            raise LimitViolation(f"{self.name}: no compliance sent yet; refusing {what}; nothing was sent")
        return self.compliance_a if self.compliance_a is not None else 0.0

    def configure_voltage_source(self, compliance_a: float, range_v: float | None = None) -> None:
        """Set up a voltage source with current compliance ``compliance_a`` (A); ``range_v`` None = auto range."""
        limits = self._require_limits()
        limits.check_compliance(compliance_a, self.name)
        if range_v is not None:
            limits.check_voltage(range_v, self.name, "source range")
        self.compliance_sent = False  # the configuration resets the instrument first
        self.write_all(self._configure_commands(compliance_a, range_v), "configuration")
        self.compliance_a = compliance_a
        self.compliance_sent = True

    def set_voltage(self, volts: float) -> None:
        """Set the DC source level (V)."""
        self._require_limits().check_voltage(volts, self.name)
        self.write(self._set_voltage_command(volts))

    def enable_output(self) -> None:
        """Switch the output on at the present level (only once a compliance has been sent)."""
        self._require_compliance("to switch the output on")
        self.write(self._output_command(True))

    def output_off(self) -> None:
        """Switch the output off."""
        self.write(self._output_command(False))

    def measure_current(self) -> float:
        """One current reading (A) at the present source level."""
        command = self._measure_command()
        return self.query_float(command)

    def source_and_measure(self, volts: float) -> float:
        """Set ``volts``, read the current (A); the output must be on."""
        self.set_voltage(volts)
        return self.measure_current()

    def configure_current_source(self, limit_v: float) -> None:
        """Set up a current source (0 A) whose terminal voltage is clamped at ``limit_v`` (V)."""
        self._require_limits().check_voltage(limit_v, self.name, "current-source voltage limit")
        self.compliance_sent = False
        self.write_all(self._current_source_commands(limit_v), "current-source configuration")
        self.compliance_sent = True

    def set_current(self, amps: float) -> None:
        """Set the DC current level of a current source (A)."""
        self._require_limits().check_current(amps, self.name)
        self.write(self._set_current_command(amps))

    def configure_voltmeter(self, limit_v: float) -> None:
        """Set up a voltmeter: source 0 A, measure voltage, clamp at ``limit_v`` (V, checked against the limits)."""
        self._require_limits().check_voltage(limit_v, self.name, "voltmeter voltage limit")
        self.compliance_sent = False
        self.write_all(self._voltmeter_commands(limit_v), "voltmeter configuration")
        self.compliance_sent = True

    def measure_voltage(self) -> float:
        """One voltage reading (V) of a voltmeter set up by :meth:`configure_voltmeter`; the output must be on."""
        return self.query_float(self._measure_command())

    def pulse_and_read(self, volts: float, width_s: float) -> float:
        """Apply one voltage pulse of ``width_s`` seconds (delay + aperture, as the instrument times it) and
        return the current measured during it (A); from a base of 0 V."""
        self._require_limits().check_pulse(volts, width_s, self.name)
        self._require_compliance("to pulse")
        self.pulse_timing(width_s)
        return float(self._pulse_and_read(volts, width_s))

    def pulse(self, volts: float, width_s: float) -> None:
        """Apply one programming pulse (the reading taken during it is discarded)."""
        self.pulse_and_read(volts, width_s)

    def pulse_train(self, levels: Sequence[float] | np.ndarray, width_s: float, period_s: float) -> np.ndarray:
        """Apply pulses of ``levels`` (V), each ``width_s`` long, one per ``period_s``; currents during each (A)."""
        levels = np.asarray(levels, dtype=np.float64)
        self._require_limits().check_pulse(levels, width_s, self.name)
        self._require_compliance("to pulse")
        self.pulse_timing(width_s)
        if not period_s > width_s:
            raise ValueError(f"{self.name}: pulse period {period_s!r} s must exceed the width {width_s!r} s")
        return self._pulse_train(levels, width_s, period_s)

    # --- per model -----------------------------------------------------------------------------------------
    def _configure_commands(self, compliance_a: float, range_v: float | None) -> list[str]:
        raise NotImplementedError

    def _set_voltage_command(self, volts: float) -> str:
        raise NotImplementedError

    def _voltmeter_commands(self, limit_v: float) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} has no voltmeter mode in this driver yet")

    def _current_source_commands(self, limit_v: float) -> list[str]:
        raise NotImplementedError(f"{type(self).__name__} has no current-source mode in this driver yet")

    def _set_current_command(self, amps: float) -> str:
        raise NotImplementedError(f"{type(self).__name__} has no current-source mode in this driver yet")

    def _output_command(self, on: bool) -> str:
        raise NotImplementedError

    def _measure_command(self) -> str:
        raise NotImplementedError

    def _pulse_and_read(self, volts: float, width_s: float) -> float:
        raise NotImplementedError

    def _pulse_train(self, levels: np.ndarray, width_s: float, period_s: float) -> np.ndarray:
        """Default: one pulse-and-read per level (models with a batched pulse mode override this)."""
        return np.array([self._pulse_and_read(float(v), width_s) for v in levels])
