"""Virtual lab instruments for driver tests over real transports: a Keithley 2450 on a resistor, a 707B matrix.

They answer the command subset our drivers send (the same lines the transcript tests pin down), keep an
error queue for anything else, and log every received line. Serve them with :class:`.servers.TcpServer`.
"""

from __future__ import annotations

import re
import threading
from collections import deque

from .crossbar import Reply
from .faults import FaultPlan
from .scpi import split_units

__all__ = ["Virtual707B", "Virtual2450"]


class _LineInstrument:
    def __init__(self, faults: FaultPlan | None = None) -> None:
        self.log: list[str] = []
        self.errors: deque[tuple[int, str]] = deque(maxlen=32)
        self.faults = faults or FaultPlan()
        #: Optional text file that every received line is appended to (``aeqprop serve --bench --log``).
        self.log_file = None
        self._lock = threading.Lock()

    def process(self, line: str) -> Reply:
        with self._lock:
            self.log.append(line)
            if self.log_file is not None:
                self.log_file.write(line + "\n")
            fired = self.faults.at(len(self.log))
            replies = []
            for unit in split_units(line):  # compound messages run in order, as on the instrument
                try:
                    answer = self._execute(unit.strip())
                except (ValueError, KeyError) as exc:
                    self.errors.append((-224 if isinstance(exc, ValueError) else -113, str(exc)))
                    answer = None
                if answer is not None:
                    replies.append(answer)
            text = ";".join(replies) if replies else None
            fault = None
            for f in fired:
                if f.kind == "error":
                    self.errors.append((-310, "System error; injected fault"))
                else:
                    fault = f
            return Reply(text, fault)

    def _execute(self, line: str) -> str | None:
        raise NotImplementedError


class Virtual2450(_LineInstrument):
    """A 2450 sourcing voltage into a resistor of ``ohms``; the current obeys the current limit (compliance).

    It also keeps the voltmeter settings (source 0 A, sense volts) so that :class:`.bench.SmuBench` can wire
    the same command set to a simulated network by overriding :meth:`reading`.
    """

    def __init__(self, ohms: float = 1000.0, faults: FaultPlan | None = None) -> None:
        super().__init__(faults)
        self.ohms = ohms
        self._reset()

    #: Mains frequency of the virtual lab (Hz): an aperture is NPLC / this.
    line_frequency_hz = 50.0

    def _reset(self) -> None:
        self.level_v = 0.0
        self.level_a = 0.0
        self.ilim_a = 1.05e-4
        self.vlim_v = 2.1
        self.output = False
        self.function = "VOLT"
        self.sense = "CURR"
        self.delay_s = 0.0
        self.nplc = 1.0
        self.autorange = True
        #: A compliance (ILIM of a voltage source, VLIM of a current source) was sent since the reset.
        self.compliance_sent = False

    @property
    def aperture_s(self) -> float:
        return self.nplc / self.line_frequency_hz

    def current(self) -> float:
        """The current through the resistor now (A), limited to ±ILIM like the instrument's compliance."""
        if not self.output:
            return 0.0
        amps = self.level_v / self.ohms
        return max(-self.ilim_a, min(self.ilim_a, amps))

    def reading(self) -> str:
        """The reply to ``:READ?`` (the 2450's default format: 7 significant digits)."""
        return f"{self.current():.6E}"

    def _execute(self, line: str) -> str | None:
        head, _, arg = line.partition(" ")
        head = head.upper()
        if head == ":SYST:ERR?":
            if not self.errors:
                return '0,"No error;0;0 0"'
            code, message = self.errors.popleft()
            return f'{code},"{message}"'
        if head == "*RST":
            self._reset()
        elif head == "*CLS":
            self.errors.clear()
        elif head == "*IDN?":
            return "KEITHLEY INSTRUMENTS,MODEL 2450,0,virtual"
        elif head == "*OPC?":
            return "1"
        elif head == ":SOUR:FUNC" and arg in ("VOLT", "CURR"):
            self.function = arg
        elif head in (":SOUR:VOLT", ":SOUR:VOLT:LEV"):
            self.level_v = float(arg)
        elif head in (":SOUR:CURR", ":SOUR:CURR:LEV"):
            self.level_a = float(arg)
        elif head == ":SOUR:VOLT:ILIM":
            self.ilim_a = float(arg)
            self.compliance_sent = True
        elif head == ":SOUR:CURR:VLIM":
            self.vlim_v = float(arg)
            self.compliance_sent = True
        elif head == ":SENS:CURR:NPLC":
            if not 0.01 <= float(arg) <= 10:
                raise ValueError(f"Parameter data out of range; {line}")
            self.nplc = float(arg)
        elif head == ":SENS:CURR:RANG":
            float(arg)
            self.autorange = False
        elif head == ":SOUR:VOLT:DEL":
            self.delay_s = float(arg)
        elif head == ":SOUR:VOLT:RANG":
            float(arg)  # a fixed range: only its syntax matters to a resistor
        elif head in (":SENS:CURR:RANG:AUTO", ":SOUR:VOLT:RANG:AUTO", ":SENS:VOLT:RANG:AUTO"):
            if arg != "ON":
                raise ValueError(f"Illegal parameter value; {line}")
            if head == ":SENS:CURR:RANG:AUTO":
                self.autorange = True
        elif head == ":SENS:FUNC" and arg in ('"CURR"', '"VOLT"'):
            self.sense = arg.strip('"')
        elif head == ":OUTP":
            if arg not in ("ON", "OFF"):
                raise ValueError(f"Illegal parameter value; {line}")
            if arg == "ON" and not self.compliance_sent:
                self.errors.append((-221, "Settings conflict; output on without a compliance (limit) set"))
                return None
            self.output = arg == "ON"
        elif head == ":READ?":
            return self.reading()
        else:
            raise KeyError(f"Undefined header; {line}")
        return None


_POINT = r"[1-6][A-H](?:0[1-9]|1[0-2])"
_ITEM = rf"{_POINT}(?::{_POINT})?"
_CHANNELS = re.compile(rf'^"({_ITEM}(?:,{_ITEM})*|allslots)"$')


def _expand(item: str) -> set[str]:
    """One crosspoint, or every crosspoint of a range ``1A01:1B03`` (slot, row and column ranges, inclusive)."""
    first, _, last = item.partition(":")
    if not last:
        return {first}
    slots = range(int(first[0]), int(last[0]) + 1)
    rows = [chr(c) for c in range(ord(first[1]), ord(last[1]) + 1)]
    cols = range(int(first[2:]), int(last[2:]) + 1)
    points = {f"{s}{r}{c:02d}" for s in slots for r in rows for c in cols}
    if not points:
        raise ValueError(f"Parameter error; empty range {item}")
    return points


class Virtual707B(_LineInstrument):
    """A 707B switch matrix (TSP subset): relays close, open and are listed; errors in TSP form."""

    def __init__(self, faults: FaultPlan | None = None) -> None:
        super().__init__(faults)
        self.closed: set[str] = set()

    def _execute(self, line: str) -> str | None:
        if line == "print(errorqueue.next())":
            if not self.errors:
                return "0.00000e+00\tQueue Is Empty\t0.00000e+00\t1.00000e+00"
            code, message = self.errors.popleft()
            return f"{float(code):.5e}\t{message}\t2.00000e+00\t1.00000e+00"
        if line == "reset()":
            self.closed.clear()
            return None
        if line == "*IDN?":
            return "Keithley Instruments Inc., Model 707B, 0, virtual"
        if line == "*CLS":
            self.errors.clear()
            return None
        if line == "*OPC?":
            return "1"
        if line == 'print(channel.getclose("allslots"))':
            return ";".join(sorted(self.closed)) or "nil"
        match = re.match(r"^channel\.(close|open|exclusiveclose)\((.*)\)$", line)
        if not match:
            raise KeyError(f"Syntax error; {line}")
        action, arg = match.groups()
        names = _CHANNELS.match(arg)
        if not names:
            raise ValueError(f"Parameter error; {arg}")
        channels = set().union(*(_expand(c) for c in names.group(1).split(","))) if names.group(1) != "allslots" \
            else {"allslots"}
        if action == "open":
            self.closed = set() if channels == {"allslots"} else self.closed - channels
        elif "allslots" in channels:
            raise ValueError("Parameter error; cannot close allslots")
        else:
            self.closed = channels if action == "exclusiveclose" else self.closed | channels
        return None
