"""Driver for a crossbar front-end board speaking our dialect (README, "Crossbar front-end protocol").

The same commands travel over a TCP socket (VISA ``TCPIP::host::port::SOCKET``) or a serial line; only
the transport differs. Write-only commands (levels, nudge) are buffered and go out joined with ``;:`` in
front of the next query, and the measurement a phase ends with may ride along too (``prefetch``), so one training phase costs
one round trip: ``INP:LEV ...;:OUTP:NUDG 0;:INIT;:STAT:SETT?;:MEAS:OUT? 1``. Lists travel as decimal text (``FORM:DATA ASC``) or, by
default, as exact hex float64 (``FORM:DATA HEX``, :func:`~aeqprop.drivers.base.fmt_hex`). Every voltage is checked against :class:`Limits` before it
is buffered, so a violation leaves nothing to send.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from aeqprop.system import InstrumentFault

from .base import Instrument, Limits, fmt, fmt_hex, fmt_list, parse_float, parse_floats, parse_hex
from .transport import Transport

__all__ = ["BoardInfo", "CrossbarFrontEnd", "ParamEntry"]


@dataclass(frozen=True)
class ParamEntry:
    """One parameter group of the board's catalog (``PAR:CAT?``)."""

    name: str
    shape: tuple[int, ...]
    unit: str
    layer: int
    role: str
    low: float
    high: float

    @cached_property
    def size(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class BoardInfo:
    """What the board reported at configuration."""

    identity: str
    n_inputs: int
    n_outputs: int
    capabilities: frozenset[str]
    params: tuple[ParamEntry, ...]
    input_gain_v: float

    @cached_property
    def catalog_size(self) -> int:
        """Values in a full parameter list (all groups, catalog order)."""
        return sum(p.size for p in self.params)


class CrossbarFrontEnd(Instrument):
    """A crossbar front-end board: set input levels, nudge outputs, settle, read outputs/local terms, program."""

    def __init__(self, transport: Transport, name: str = "crossbar", limits: Limits | None = None,
                 data_format: str = "hex") -> None:
        if data_format not in ("hex", "ascii"):
            raise ValueError(f"{name}: data_format must be 'hex' or 'ascii', got {data_format!r}")
        super().__init__(transport, name, limits)
        self.data_format = data_format
        self._pending: list[str] = []
        self._prefetched: tuple[str, str] | None = None
        self.info: BoardInfo | None = None

    def _encode(self, values: np.ndarray) -> str:
        return fmt_hex(values) if self.data_format == "hex" else fmt_list(values)

    def _decode(self, text: str, count: int, command: str) -> np.ndarray:
        if self.data_format == "hex":
            return parse_hex(text, count, self.name, command)
        return parse_floats(text, count, self.name, command)

    # --- configuration -------------------------------------------------------------------------------------
    def configure(self, pulse_amplitude_v: float, pulse_width_s: float) -> BoardInfo:
        """Check the pulse settings against the limits, read the board's catalog, set the pulse, drain errors."""
        limits = self._require_limits()
        limits.check_pulse(pulse_amplitude_v, pulse_width_s, self.name)
        self.write("*CLS")
        identity = self.query("*IDN?")
        sizes = parse_floats(self.query("CONF:SIZE?"), 2, self.name, "CONF:SIZE?")
        caps = frozenset(c.strip() for c in self.query("SYST:CAP?").split(",") if c.strip())
        params = tuple(self._entry(text) for text in self.query("PAR:CAT?").split(","))
        gain = parse_float(self.query("INP:GAIN?"), self.name, "INP:GAIN?")
        self.write(f"PROG:PULS:AMPL {fmt(pulse_amplitude_v)}")
        self.write(f"PROG:PULS:WIDT {fmt(pulse_width_s)}")
        self.write(f"FORM:DATA {'HEX' if self.data_format == 'hex' else 'ASC'}")
        self.check_errors("configuration")
        self.info = BoardInfo(identity, int(sizes[0]), int(sizes[1]), caps, params, gain)
        return self.info

    def _entry(self, text: str) -> ParamEntry:
        try:
            name, shape, unit, layer, role, low, high = text.split()
            return ParamEntry(name, tuple(int(n) for n in shape.split("x")), "" if unit == "-" else unit,
                              int(layer), role, float(low), float(high))
        except ValueError:
            raise InstrumentFault(f"{self.name}: garbled catalog entry in reply to 'PAR:CAT?': {text[:80]!r}") from None

    def output_on(self) -> None:
        self.write("OUTP:STAT ON")
        self.check_errors("switching outputs on")

    def output_off(self) -> None:
        """Drop anything buffered, switch the board's sources off and read back that they are off."""
        self._pending.clear()
        self._prefetched = None
        command = "OUTP:STAT OFF;:OUTP:STAT?"
        reply = self.query(command)
        if reply.strip() != "0":
            raise InstrumentFault(f"{self.name}: outputs still on after {command!r} (reply {reply[:40]!r})")

    # --- buffered writes (checked before buffering) ----------------------------------------------------------
    def set_levels(self, levels: np.ndarray) -> None:
        """Buffer ``INP:LEV``: input levels (board order); raises LimitViolation when level*gain is too large."""
        info = self._require_info()
        levels = np.asarray(levels, dtype=np.float64)
        self._require_limits().check_voltage(levels * info.input_gain_v, self.name, "input voltage")
        self._prefetched = None
        self._pending.append(f"INP:LEV {self._encode(levels)}")

    def set_nudge(self, beta: float, target: np.ndarray | None) -> None:
        """Buffer ``OUTP:NUDG``: nudge strength and, when given, target voltages (board order)."""
        self._prefetched = None
        if target is None:
            self._pending.append(f"OUTP:NUDG {fmt(beta)}")
            return
        self._require_limits().check_voltage(target, self.name, "nudge target voltage")
        self._pending.append(f"OUTP:NUDG {fmt(beta)},{self._encode(target)}")

    # --- queries -------------------------------------------------------------------------------------------
    def _flush_query(self, command: str) -> str:
        self._prefetched = None
        line = ";:".join([*self._pending, command])
        self._pending.clear()
        return self.query(line)

    def settle(self, prefetch: str | None = None) -> tuple[int, int, float]:
        """Send what is buffered, start settling and return the first status (state, count, residual).

        ``prefetch`` ("MEAS:OUT? 1" or "MEAS:LOC? 1") rides in the same round trip; its reply is kept for the
        next :meth:`read_outputs` / :meth:`read_local` when the board reports settled, and dropped otherwise
        or as soon as any other command is sent.
        """
        command = "INIT;:STAT:SETT?" + (f";:{prefetch}" if prefetch else "")
        reply = self._flush_query(command)
        status_text, _, extra = reply.partition(";")
        status = self._status(status_text, command)
        if prefetch:
            if not extra:
                raise InstrumentFault(f"{self.name}: no {prefetch!r} part in reply to {command[:40]!r}: {reply[:60]!r}")
            if status[0] == 1:
                self._prefetched = (prefetch, extra)
        return status

    def settle_status(self) -> tuple[int, int, float]:
        """Settle status: state 1 settled, 0 settling, -1 failed; the board's step count and residual (V)."""
        return self._status(self._flush_query("STAT:SETT?"), "STAT:SETT?")

    def _status(self, reply: str, command: str) -> tuple[int, int, float]:
        values = parse_floats(reply, 3, self.name, command)
        state = int(values[0])
        if state not in (-1, 0, 1) or values[1] < 0:
            raise InstrumentFault(f"{self.name}: garbled reply to {command!r}: {reply[:80]!r}")
        return state, int(values[1]), float(values[2])

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        """Output voltages (board order), mean of ``reads`` reads."""
        command = f"MEAS:OUT? {int(reads)}"
        return self._decode(self._take(command), self._require_info().n_outputs, command)

    def read_local(self, reads: int = 1) -> np.ndarray:
        """Local terms dE/dθ of every device, flat in catalog order (½ΔV² per conductance, −V per bias)."""
        command = f"MEAS:LOC? {int(reads)}"
        return self._decode(self._take(command), self._catalog_size(), command)

    def _take(self, command: str) -> str:
        """The prefetched reply to ``command`` if it is the one waiting, else a fresh query."""
        if self._prefetched is not None and self._prefetched[0] == command and not self._pending:
            reply = self._prefetched[1]
            self._prefetched = None
            return reply
        return self._flush_query(command)

    def read_params(self) -> np.ndarray:
        """Parameters as measured, flat in catalog order."""
        return self._decode(self._flush_query("PAR?"), self._catalog_size(), "PAR?")

    def program_increments(self, flat: np.ndarray) -> None:
        """Request increments of every parameter (flat, catalog order) and check the error queue in the same trip."""
        self._program("PROG:INCR", flat)

    def program_values(self, flat: np.ndarray) -> None:
        """Program-and-verify every parameter to absolute values (used to restore a checkpoint)."""
        self._program("PROG:SET", flat)

    def _program(self, header: str, flat: np.ndarray) -> None:
        flat = np.asarray(flat, dtype=np.float64)
        if flat.size != self._catalog_size():
            raise ValueError(f"{header}: expected {self._catalog_size()} values, got {flat.size}")
        reply = self._flush_query(f"{header} {self._encode(flat)};:SYST:ERR?")
        code, _, message = reply.partition(",")
        try:
            code_value = int(code)
        except ValueError:
            raise InstrumentFault(f"{self.name}: garbled reply to {header!r}: {reply[:80]!r}") from None
        if code_value != 0:
            rest = ""
            try:
                self.check_errors(header)
            except InstrumentFault as exc:
                rest = f"; {exc}"
            raise InstrumentFault(f"{self.name}: instrument error after {header}: {code_value} {message.strip(chr(34))}{rest}")

    def _require_info(self) -> BoardInfo:
        if self.info is None:
            raise RuntimeError(f"{self.name}: configure() first")
        return self.info

    def _catalog_size(self) -> int:
        return self._require_info().catalog_size
