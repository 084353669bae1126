"""Shared pieces of Keithley TSP instruments (2600B SourceMeters, 707B switch matrix).

TSP reads Lua statements; queries are ``print(...)``. The error queue is read with ``errorqueue.next()``,
which prints ``code<TAB>message<TAB>severity<TAB>node`` and code 0 when empty (2600B Reference Manual
2600BS-901-01 and 707B Reference Manual 707B-901-01, "errorqueue" functions).
"""

from __future__ import annotations

from aeqprop.system import InstrumentFault

from .base import Instrument

__all__ = ["TspInstrument", "tsp_string"]


def tsp_string(text: str) -> str:
    """A Lua string literal (double-quoted); refuses characters that would end the statement."""
    if any(c in text for c in '"\\\n\r'):
        raise ValueError(f"refusing to send {text!r} inside a TSP string")
    return f'"{text}"'


class TspInstrument(Instrument):
    """A TSP instrument: errors come from ``errorqueue.next()``."""

    error_query = "print(errorqueue.next())"

    def next_error(self) -> tuple[int, str]:
        reply = self.query(self.error_query)
        code, _, message = reply.partition("\t")
        try:
            return int(float(code)), message.split("\t")[0].strip()
        except ValueError:
            raise InstrumentFault(f"{self.name}: garbled reply to {self.error_query!r}: {reply[:80]!r}") from None
