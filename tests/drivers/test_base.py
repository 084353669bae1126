"""The driver base: number format, limits that refuse (never clamp), typed faults, bounded error drain, safe exit."""

from __future__ import annotations

import math

import numpy as np
import pytest
from aeqprop.drivers.base import Instrument, Limits, fmt, fmt_list, parse_floats
from aeqprop.drivers.transcript import Transcript, TranscriptMismatch
from aeqprop.drivers.transport import TransportError

from aeqprop.system import InstrumentFault, LimitViolation

LIMITS = Limits(max_voltage_v=2.0, max_current_a=1e-3, max_pulse_v=1.5, max_pulse_width_s=1e-3, min_pulse_width_s=1e-6)


class Box(Instrument):
    """A minimal instrument with an output, for testing the base."""

    def output_off(self) -> None:
        self.write(":OUTP OFF")


@pytest.mark.parametrize("value", [0.1, 1 / 3, -2.5e-17, 1e300, 5.0, np.float64(np.pi), 123456789.123456789])
def test_fmt_round_trips_exactly(value: float) -> None:
    """The canonical format reads back to the identical float, so values cross the wire without drift."""
    assert float(fmt(value)) == float(value)


def test_fmt_list_round_trips_and_refuses_non_finite() -> None:
    """Lists round-trip exactly; NaN or inf never go out."""
    values = np.random.default_rng(0).normal(size=50) * 1e-3
    assert np.array_equal(parse_floats(fmt_list(values), 50, "x", "y"), values)
    for bad in (math.nan, math.inf):
        with pytest.raises(ValueError):
            fmt(bad)
        with pytest.raises(ValueError):
            fmt_list([1.0, bad])


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: LIMITS.check_voltage(2.0000001, "smu"), "exceeds the limit ±2.0 V"),
        (lambda: LIMITS.check_voltage(np.array([0.0, -3.0]), "smu"), "3.0 V exceeds"),
        (lambda: LIMITS.check_voltage(math.nan, "smu"), "non-finite"),
        (lambda: LIMITS.check_compliance(2e-3, "smu"), "max_current_a"),
        (lambda: LIMITS.check_compliance(0.0, "smu"), "max_current_a"),
        (lambda: LIMITS.check_pulse(1.6, 1e-4, "smu"), "max_pulse_v"),
        (lambda: LIMITS.check_pulse(1.0, 2e-3, "smu"), "pulse width"),
        (lambda: LIMITS.check_pulse(1.0, 1e-7, "smu"), "pulse width"),
    ],
)
def test_limits_refuse_with_owner_value_and_limit(check, message: str) -> None:
    """Each validator raises LimitViolation naming owner and limit; none returns a clamped value."""
    with pytest.raises(LimitViolation, match=message) as info:
        check()
    assert str(info.value).startswith("smu:")


def test_limits_accept_the_boundary() -> None:
    """Values exactly at a limit pass (the limit is inclusive)."""
    LIMITS.check_voltage(-2.0, "smu")
    LIMITS.check_pulse(1.5, 1e-3, "smu")
    LIMITS.check_compliance(1e-3, "smu")


def test_inconsistent_limits_are_rejected() -> None:
    """A pulse limit above the voltage limit is a configuration error."""
    with pytest.raises(ValueError, match="max_pulse_v"):
        Limits(max_voltage_v=1.0, max_current_a=1e-3, max_pulse_v=2.0)


def test_error_queue_drain_raises_with_every_entry() -> None:
    """Non-empty queue: all entries are read (until 0) and reported in one InstrumentFault."""
    link = Transcript([
        (b":SYST:ERR?\n", b'-222,"Data out of range"\n'),
        (b":SYST:ERR?\n", b'-113,"Undefined header"\n'),
        (b":SYST:ERR?\n", b'0,"No error"\n'),
    ])
    with pytest.raises(InstrumentFault, match=r"box: instrument errors after setup: -222 Data out of range; -113"):
        Box(link, "box").check_errors("setup")
    link.assert_done()


def test_error_queue_drain_is_bounded() -> None:
    """A queue that never empties stops after a bounded number of reads instead of looping forever."""
    link = Transcript([(b":SYST:ERR?\n", b'-100,"Command error"\n')] * 16)
    with pytest.raises(InstrumentFault, match="queue not empty after 16 reads"):
        Box(link, "box").check_errors()
    link.assert_done()


class DeadLink:
    def write(self, data: bytes) -> None:
        raise TransportError("connection reset")

    def read_line(self, termination: bytes) -> bytes:
        raise TransportError("timeout")

    def close(self) -> None:
        pass


def test_transport_failures_name_instrument_and_command() -> None:
    """A dead link becomes InstrumentFault with the instrument and the command in one line."""
    with pytest.raises(InstrumentFault, match=r"^box: sending '\*IDN\?' failed: connection reset$"):
        Box(DeadLink(), "box").query("*IDN?")


def test_garbled_reply_raises_with_raw_text() -> None:
    """Bytes that are not ASCII, or not a number where one is expected, raise with the raw reply quoted; the
    query after a garbled reply first clears the link (``*OPC?``)."""
    box = Box(Transcript([(b"*IDN?\n", b"\xfe\xff\n"), (b"*OPC?\n", b"1\n"), (b"MEAS?\n", b"1.0,abc\n")]), "box")
    with pytest.raises(InstrumentFault, match="garbled reply to '\\*IDN\\?'"):
        box.query("*IDN?")
    with pytest.raises(InstrumentFault, match="garbled reply to 'MEAS\\?': '1.0,abc'"):
        parse_floats(box.query("MEAS?"), 2, "box", "MEAS?")


def test_context_manager_switches_output_off_on_exception() -> None:
    """An exception inside ``with`` still sends the output-off command and closes the link, then propagates."""
    link = Transcript([(b":OUTP OFF\n", None)])
    with pytest.raises(RuntimeError, match="boom"), Box(link, "box"):
        raise RuntimeError("boom")
    link.assert_done()
    assert link.closed


def test_transcript_rejects_unexpected_bytes() -> None:
    """The transcript helper itself fails on any difference, so driver tests can fail."""
    with pytest.raises(TranscriptMismatch, match="expected b':OUTP OFF\\\\n', got b':OUTP OFF \\\\n'"):
        Transcript([(b":OUTP OFF\n", None)]).write(b":OUTP OFF \n")
    with pytest.raises(TranscriptMismatch, match="never sent"):
        Transcript([(b"*RST\n", None)]).assert_done()
