"""Keithley 707B switch matrix: exact TSP lines, crosspoint validation before sending, all relays open on close."""

from __future__ import annotations

import pytest
from aeqprop.drivers.keithley707b import Keithley707B
from aeqprop.drivers.transcript import Transcript

from aeqprop.system import InstrumentFault

OK = b"0.00000e+00\tQueue Is Empty\t0.00000e+00\t1.00000e+00\n"


def test_route_close_query_and_close() -> None:
    """exclusiveclose/close/getclose as in the 707B manual; leaving the context opens every relay."""
    link = Transcript([
        (b"reset()\n", None), (b"print(errorqueue.next())\n", OK),
        (b'channel.exclusiveclose("1A01,1B02")\n', None), (b"print(errorqueue.next())\n", OK),
        (b'channel.close("2H12")\n', None), (b"print(errorqueue.next())\n", OK),
        (b'print(channel.getclose("allslots"))\n', b"1A01;1B02;2H12\n"),
        (b'channel.open("1A01")\n', None), (b"print(errorqueue.next())\n", OK),
        (b'print(channel.getclose("allslots"))\n', b"nil\n"),
        (b'channel.open("allslots")\n', None),
    ])
    with Keithley707B(link, "matrix") as matrix:
        matrix.reset()
        matrix.route(["1A01", "1B02"])
        matrix.close_channels(["2H12"])
        assert matrix.closed() == ["1A01", "1B02", "2H12"]
        matrix.open_channels(["1A01"])
        assert matrix.closed() == []
    link.assert_done()


@pytest.mark.parametrize("channel", ["7A01", "1I01", "1A13", "1A00", "1a01", '1A01")', "1A1"])
def test_invalid_crosspoint_sends_nothing(channel: str) -> None:
    """A malformed or out-of-range crosspoint is refused before any byte is written (also blocks TSP injection)."""
    link = Transcript([])
    with pytest.raises(ValueError, match="invalid crosspoints"):
        Keithley707B(link).close_channels(["1A01", channel])
    assert link.sent == []


def test_relay_error_raises() -> None:
    """An error entry after a relay command stops with the instrument's message (TSP error format)."""
    link = Transcript([
        (b'channel.close("1A01")\n', None),
        (b"print(errorqueue.next())\n", b"-2.21000e+02\tSettings conflict\t2.00000e+00\t1.00000e+00\n"),
        (b"print(errorqueue.next())\n", OK),
    ])
    with pytest.raises(InstrumentFault, match="-221 Settings conflict"):
        Keithley707B(link, "matrix").close_channels(["1A01"])


def test_channel_ranges_are_accepted() -> None:
    """The manual's range form (first:last, inclusive) is a valid channel list; a reversed range is not."""
    link = Transcript([(b'channel.close("1A01:1A05,2B03")\n', None), (b"print(errorqueue.next())\n", OK)])
    Keithley707B(link, "matrix").close_channels(["1A01:1A05", "2B03"])
    link.assert_done()
    with pytest.raises(ValueError, match="invalid crosspoints"):
        Keithley707B(Transcript([]), "matrix").close_channels(["1A05:1A01"])
