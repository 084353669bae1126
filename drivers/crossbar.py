"""Driver for a crossbar front-end board speaking our dialect (docs/hardware.md, "Crossbar front-end dialect").

The same commands travel over a TCP socket (VISA ``TCPIP::host::port::SOCKET``) or a serial line; only the
transport differs. One training phase is one round trip: the write-only commands of the phase (levels, nudge)
go out joined with ``;:`` in front of the phase's queries, each write followed by the query that reads it back,
and every round trip ends with ``SYST:ERR?``::

    INP:LEV <list>;:INP:LEV?;:OUTP:NUDG <beta>,<list>;:OUTP:NUDG?;:INIT;:STAT:SETT?;:MEAS:OUT? 1;:SYST:ERR?

A programming step (``PROG:INCR <list>;:PAR?``) rides in front of the next round trip, so a centered-EP sample
costs 3 round trips.

Lists travel as IEEE-488.2 definite-length binary blocks of big-endian float64 (``FORM:DATA REAL,64``, the
default: ``#<n><length><bytes>``, what pyvisa's ``write_binary_values(..., datatype="d", is_big_endian=True)``
sends), as hex float64 (``FORM:DATA HEX``) or as decimal text (``FORM:DATA ASC``).

Nothing a reply says is trusted before it is checked: every value must be finite, of the expected count and
within the physical range the limits imply (outputs within ``max_voltage_v``; local terms of a conductance
within ½(2·max_voltage_v)²; parameters within the catalog's bounds); settings written are read back in the same
round trip and must equal what was sent; programmed parameters are read back (``PAR?``, every
``readback_every`` programming steps) and compared with what was asked within the board's stated precision; a
measurement identical to the previous one although the settings changed is a stale reply. Every violation is an
:class:`~aeqprop.system.InstrumentFault`; the link is then cleared before anything else is asked.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cached_property

import numpy as np

from aeqprop.system import InstrumentFault, NotSettled

from .base import (
    Instrument,
    Limits,
    _short,
    check_finite,
    fmt,
    fmt_hex,
    fmt_list,
    parse_float,
    parse_floats,
    parse_hex,
    quote,
)
from .transport import Transport

__all__ = ["DATA_FORMATS", "BoardInfo", "CrossbarFrontEnd", "ParamEntry", "binary_block", "parse_binary_block"]

#: ``data_format`` -> the ``FORM:DATA`` argument that selects it on the board.
DATA_FORMATS = {"binary": "REAL,64", "hex": "HEX", "ascii": "ASC"}
#: Relative agreement asked of a read-back parameter on top of the board's stated absolute precision (float64
#: arithmetic done in another order on the board).
READBACK_RTOL = 1e-9
#: A reply part read as text (status, error entry); an int is a list of that many values.
TEXT = None


def binary_block(values: np.ndarray) -> bytes:
    """An IEEE-488.2 definite-length block of big-endian float64: ``#<digits><length><bytes>``."""
    payload = np.asarray(values, dtype=">f8").ravel().tobytes()
    length = str(len(payload))
    return b"#" + str(len(length)).encode("ascii") + length.encode("ascii") + payload


def parse_binary_block(data: bytes, count: int, who: str, command: str) -> np.ndarray:
    """Strictly read one whole block of exactly ``count`` finite float64 (the header must say so exactly)."""
    if len(data) < 2 or data[:1] != b"#" or not b"1" <= data[1:2] <= b"9":
        raise InstrumentFault(f"{who}: expected a binary block in reply to {_short(command)!r}: {quote(data)}")
    digits = int(data[1:2])
    length_text = data[2 : 2 + digits]
    if len(length_text) != digits or not length_text.isdigit() or int(length_text) != 8 * count \
            or len(data) != 2 + digits + 8 * count:
        raise InstrumentFault(f"{who}: binary block in reply to {_short(command)!r} is not {count} float64: "
                              f"{quote(data)}")
    return check_finite(np.frombuffer(data, dtype=">f8", offset=2 + digits).astype(np.float64), who, command)


def _same(echoed: object, expected: np.ndarray) -> bool:
    """A read-back equals what was sent; NaN in ``expected`` stands for a value the driver cannot know yet."""
    got = np.asarray(echoed, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    known = ~np.isnan(expected)
    return bool(np.array_equal(got[known], expected[known]))


def _physics_key(echo: str, expected: np.ndarray) -> bytes:
    """What a confirmed setting does to the physics, as bytes (stale-reply detection compares these): the same
    setting written two ways is one key, and a zero nudge is the same whatever its target."""
    values = np.asarray(expected, dtype=np.float64)
    if echo == "OUTP:NUDG?" and values.size and values[0] == 0:
        return b"no nudge"
    return values.tobytes()


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


@dataclass(frozen=True)
class _Write:
    """A buffered write-only command, the query that reads it back (None: none) and what it must read back.

    Settings must read back exactly; a programming step (``program``) within the precision, through
    :meth:`CrossbarFrontEnd._verify` (``expected`` None: the parameters were not known, only their bounds)."""

    command: bytes
    echo: str | None
    expected: np.ndarray | None
    count: int
    program: bool = False


class CrossbarFrontEnd(Instrument):
    """A crossbar front-end board: set input levels, nudge outputs, settle, read outputs/local terms, program.

    ``readback_every``: read the parameters back after every N-th programming step (0: only when they are read
    anyway, at checkpoints). ``precision``: the board's stated absolute precision of a programmed parameter
    (parameter units); a read-back further than that (plus :data:`READBACK_RTOL`) from what was asked is a fault.
    ``program_rides_along``: a programming step (with its read-back) goes out in front of the next round trip
    instead of its own, so a training sample costs 3 round trips instead of 4; its errors and read-back are
    checked in that round trip, before anything else is programmed. Close sends a step still waiting, unless a
    fault came first.
    """

    def __init__(self, transport: Transport, name: str = "crossbar", limits: Limits | None = None,
                 data_format: str = "binary", readback_every: int = 1, precision: float = 0.0,
                 program_rides_along: bool = True) -> None:
        if data_format not in DATA_FORMATS:
            raise ValueError(f"{name}: data_format must be one of {sorted(DATA_FORMATS)}, got {data_format!r}")
        super().__init__(transport, name, limits)
        self.data_format = data_format
        self.readback_every = int(readback_every)
        self.precision = float(precision)
        self.program_rides_along = program_rides_along
        self._pending: list[_Write] = []
        self._prefetched: tuple[str, np.ndarray] | None = None
        self.info: BoardInfo | None = None
        #: Parameters as last read back, advanced by every programming step since (None: not known yet).
        self._expected: np.ndarray | None = None
        self._steps = 0
        #: Settings the board confirmed (levels, nudge), and the last measurement of each kind under them.
        self._settings: dict[str, bytes] = {}
        self._nudge_target: np.ndarray | None = None  # the target in force on the board (kept through nudges)
        self._last: dict[str, tuple[tuple[bytes, ...], np.ndarray]] = {}

    # --- lists ----------------------------------------------------------------------------------------------
    def _encode(self, values: np.ndarray) -> bytes:
        if self.data_format == "binary":
            return binary_block(values)
        return (fmt_hex(values) if self.data_format == "hex" else fmt_list(values)).encode("ascii")

    def _decode(self, text: str, count: int, command: str) -> np.ndarray:
        if self.data_format == "hex":
            return parse_hex(text, count, self.name, command)
        return parse_floats(text, count, self.name, command)

    # --- configuration -------------------------------------------------------------------------------------
    def configure(self, pulse_amplitude_v: float, pulse_width_s: float) -> BoardInfo:
        """Check the pulse settings, identify the board, read its catalog, set pulse and format, drain errors."""
        limits = self._require_limits()
        limits.check_pulse(pulse_amplitude_v, pulse_width_s, self.name)
        identity = self.identify()
        sizes = parse_floats(self.query("CONF:SIZE?"), 2, self.name, "CONF:SIZE?")
        if not np.all((sizes >= 1) & (sizes <= 1 << 20) & (sizes == np.round(sizes))):
            raise self.fault(f"{self.name}: implausible sizes in reply to 'CONF:SIZE?': {sizes.tolist()}")
        caps = frozenset(c.strip() for c in self.query("SYST:CAP?").split(",") if c.strip())
        params = tuple(self._entry(text) for text in self.query("PAR:CAT?").split(","))
        gain = parse_float(self.query("INP:GAIN?"), self.name, "INP:GAIN?")
        if not gain > 0:
            raise self.fault(f"{self.name}: input gain {gain!r} V is not positive")
        self.write(f"PROG:PULS:AMPL {fmt(pulse_amplitude_v)}")
        self.write(f"PROG:PULS:WIDT {fmt(pulse_width_s)}")
        self.write(f"FORM:DATA {DATA_FORMATS[self.data_format]}")
        self.check_errors("configuration")
        self.info = BoardInfo(identity, int(sizes[0]), int(sizes[1]), caps, params, gain)
        self._ranges()
        self.read_params()  # the starting point every programming step is compared against
        return self.info

    def _entry(self, text: str) -> ParamEntry:
        try:
            name, shape, unit, layer, role, low, high = text.split()
            entry = ParamEntry(name, tuple(int(n) for n in shape.split("x")), "" if unit == "-" else unit,
                               int(layer), role, float(low), float(high))
        except ValueError:
            raise self.fault(f"{self.name}: garbled catalog entry in reply to 'PAR:CAT?': {quote(text)}") from None
        if entry.size < 1 or math.isnan(entry.low) or math.isnan(entry.high) or entry.low > entry.high:
            raise self.fault(f"{self.name}: implausible catalog entry in reply to 'PAR:CAT?': {quote(text)}")
        return entry

    def _ranges(self) -> None:
        """Physical ranges of local terms and parameters, flat in catalog order (checked on every reply)."""
        info = self._require_info()
        vmax = self._require_limits().max_voltage_v
        local_lo, local_hi, par_lo, par_hi = [], [], [], []
        for p in info.params:
            bias = p.role == "bias"  # local term -V of a node; otherwise ½ΔV² across a device
            local_lo.append(np.full(p.size, -vmax if bias else 0.0))
            local_hi.append(np.full(p.size, vmax if bias else 0.5 * (2 * vmax) ** 2))
            par_lo.append(np.full(p.size, p.low))
            par_hi.append(np.full(p.size, p.high))
        self._local_range = (np.concatenate(local_lo), np.concatenate(local_hi))
        self._param_range = (np.concatenate(par_lo), np.concatenate(par_hi))

    def output_on(self) -> None:
        state, = self._exchange([], [("OUTP:STAT ON;:OUTP:STAT?", TEXT)], "switching outputs on")
        if state.strip() != "1":
            raise self.fault(f"{self.name}: outputs not on after 'OUTP:STAT ON' (reply {quote(state)})")

    def output_off(self) -> None:
        """Drop anything buffered, switch the board's sources off, read back that they are off, drain errors.

        After a fault the switch-off goes out first, before the link is cleared, so that it is sent whatever
        state the link is in; the read-back then follows on a clean link.
        """
        unsent: InstrumentFault | None = None
        if not self._dirty and any(p.program for p in self._pending):  # a step computed before close: send it
            self._pending = [p for p in self._pending if p.program]
            try:
                self._exchange([], [], "programming")
            except InstrumentFault as exc:
                unsent = exc
        self._pending.clear()
        self._prefetched = None
        if self._dirty:
            self.write("OUTP:STAT OFF")
        state, = self._exchange([], [("OUTP:STAT OFF;:OUTP:STAT?", TEXT)], "switching outputs off")
        if state.strip() != "0":
            raise self.fault(f"{self.name}: outputs still on after 'OUTP:STAT OFF' (reply {quote(state)})")
        if unsent is not None:
            raise unsent

    # --- buffered writes (checked before buffering) ----------------------------------------------------------
    def set_levels(self, levels: np.ndarray) -> None:
        """Buffer ``INP:LEV``: input levels (board order); raises LimitViolation when level*gain is too large."""
        info = self._require_info()
        levels = np.asarray(levels, dtype=np.float64)
        self._require_limits().check_voltage(levels * info.input_gain_v, self.name, "input voltage")
        self._prefetched = None
        self._pending.append(_Write(b"INP:LEV " + self._encode(levels), "INP:LEV?", levels.copy(), levels.size))

    def set_nudge(self, beta: float, target: np.ndarray | None) -> None:
        """Buffer ``OUTP:NUDG``: nudge strength and, when given, target voltages (board order).

        ``OUTP:NUDG?`` reads back beta followed by the target in force (the last one given; zeros before any)."""
        info = self._require_info()
        self._prefetched = None
        if target is None:  # the board keeps the target in force and reports it (unknown before any read-back)
            kept = self._nudge_target if self._nudge_target is not None else np.full(info.n_outputs, np.nan)
            expected = np.concatenate([[float(beta)], kept])
            command = f"OUTP:NUDG {fmt(beta)}".encode("ascii")
            self._pending.append(_Write(command, "OUTP:NUDG?", expected, expected.size))
            return
        target = np.asarray(target, dtype=np.float64)
        self._require_limits().check_voltage(target, self.name, "nudge target voltage")
        fmt(beta)  # refuses a non-finite beta before anything is buffered
        expected = np.concatenate([[float(beta)], target.ravel()])
        self._nudge_target = target.ravel().copy()
        if self.data_format == "binary":  # beta and targets in one block: one list, one parse
            command = b"OUTP:NUDG " + self._encode(expected)
        else:
            command = f"OUTP:NUDG {fmt(beta)},".encode("ascii") + self._encode(target)
        self._pending.append(_Write(command, "OUTP:NUDG?", expected, expected.size))

    # --- round trips ---------------------------------------------------------------------------------------
    def _exchange(self, writes: list[bytes], queries: list[tuple[str, int | None]], what: str) -> list:
        """One round trip: the buffered writes with their read-backs, ``queries``, then ``SYST:ERR?``.

        Returns the replies to ``queries`` (text or checked arrays). A reply that cannot be read as expected
        is a fault; the link is then cleared and the error queue drained into the message, when still possible.
        """
        pending, self._pending = self._pending, []
        self._prefetched = None
        checked = [p for p in pending if p.echo is not None]
        kinds: list[int | None] = [p.count for p in checked]
        parts = []
        for p in pending:
            parts += [p.command] if p.echo is None else [p.command, p.echo.encode("ascii")]
        for command, kind in queries:
            parts.append(command.encode("ascii"))
            kinds.append(kind)
        parts.append(b"SYST:ERR?")
        kinds.append(TEXT)
        label = ";:".join([*(p.echo for p in checked if p.echo), *(c for c, _ in queries), "SYST:ERR?"])
        if self._dirty:
            self.clear_link()
        self.write_raw(b";:".join(writes + parts))
        try:
            replies = self._read_reply(kinds, label)
        except InstrumentFault as exc:
            raise self._with_errors(exc, what) from None
        self.check_errors(what, self.parse_error(replies[-1]))
        for p, echoed in zip(checked, replies, strict=False):
            if p.program:
                self._verify(echoed, "PROG:INCR;:PAR?", p.expected)
            elif not _same(echoed, p.expected):
                raise self.fault(f"{self.name}: {p.echo!r} read back {quote(str(np.asarray(echoed).tolist()))}, "
                                 f"not what was sent ({quote(str(np.asarray(p.expected).tolist()))}): the command "
                                 f"was not applied")
            else:
                self._settings[str(p.echo)] = _physics_key(str(p.echo), echoed)
                if p.echo == "OUTP:NUDG?":
                    self._nudge_target = np.asarray(echoed, dtype=np.float64)[1:].copy()
        return replies[len(checked):-1]

    def _with_errors(self, exc: InstrumentFault, what: str) -> InstrumentFault:
        """``exc`` with whatever the error queue says, read on a cleared link (best effort, bounded)."""
        try:
            self.clear_link()
            self.check_errors(what)
        except InstrumentFault as more:
            return self.fault(f"{exc}; then {more}"[:600])
        return self.fault(str(exc))

    def _read_reply(self, kinds: list[int | None], command: str) -> list:
        """The parts of one compound reply: text, or exactly that many finite float64."""
        if self.data_format != "binary":
            line = self.read(command)
            texts = line.split(";", len(kinds) - 1)  # the error entry last: its message may hold ";"
            if len(texts) != len(kinds):
                raise self.fault(f"{self.name}: expected {len(kinds)} replies to {_short(command)!r}, got "
                                 f"{len(texts)}: {quote(line)}")
            try:
                return [t if k is TEXT else self._decode(t, k, command) for t, k in zip(texts, kinds, strict=True)]
            except InstrumentFault as exc:
                raise self.fault(str(exc)) from None
        if all(kind is not TEXT for kind in kinds[:-1]) and kinds[-1] is TEXT:
            return self._read_blocks_then_text(kinds, command)
        out: list = []
        for i, kind in enumerate(kinds):
            end = b"\n" if i == len(kinds) - 1 else b";"
            if kind is TEXT:
                raw = self.read_raw_until(end, command)
                if b"\n" in raw[:-1] or raw[:1] == b"#" or len(raw) > 4096:
                    raise self.fault(f"{self.name}: reply to {_short(command)!r} ended after {i} of {len(kinds)} "
                                     f"parts or holds a misplaced part: {quote(raw)}")
                try:
                    out.append(raw[:-1].decode("ascii"))
                except UnicodeDecodeError:
                    raise self.fault(f"{self.name}: garbled reply to {_short(command)!r}: {quote(raw)}") from None
                continue
            head = self.read_exact(2, command)
            if head[:1] != b"#" or not b"1" <= head[1:2] <= b"9":
                raise self.fault(f"{self.name}: expected a binary block as part {i + 1} of the reply to "
                                 f"{_short(command)!r}, got {quote(head)}")
            digits = self.read_exact(int(head[1:2]), command)
            if not digits.isdigit() or int(digits) != 8 * kind:
                raise self.fault(f"{self.name}: binary block of {quote(digits)} bytes in reply to "
                                 f"{_short(command)!r}; expected {8 * kind} ({kind} float64)")
            payload = self.read_exact(8 * kind, command)
            if self.read_exact(1, command) != end:
                raise self.fault(f"{self.name}: binary block in reply to {_short(command)!r} not followed by {end!r}")
            try:
                out.append(check_finite(np.frombuffer(payload, dtype=">f8").astype(np.float64), self.name, command))
            except InstrumentFault as exc:
                raise self.fault(str(exc)) from None
            self.replies += 1
        return out

    def _read_blocks_then_text(self, kinds: list[int | None], command: str) -> list:
        """Blocks of known sizes, then one text part: one exact read for all blocks, one line read for the text.

        Each header must say exactly the expected length and each block be followed by ``;``; anything else is a
        fault (the bytes read may then belong to a reply that was not this one: the link is marked dirty)."""
        counts = [int(k) for k in kinds[:-1] if k is not None]
        heads = [b"#%d%d" % (len(str(8 * n)), 8 * n) for n in counts]
        total = sum(len(h) + 8 * n + 1 for h, n in zip(heads, counts, strict=True))
        raw = self.read_exact(total, command) if total else b""
        out: list = []
        at = 0
        for i, (head, n) in enumerate(zip(heads, counts, strict=True)):
            end = at + len(head) + 8 * n
            if raw[at : at + len(head)] != head or raw[end : end + 1] != b";":
                raise self.fault(f"{self.name}: part {i + 1} of the reply to {_short(command)!r} is not a block of "
                                 f"{n} float64 followed by ';': {quote(raw[at : at + 40])}")
            # Not checked for NaN/inf here: every caller compares the values with a range or with what was sent,
            # in comparisons that NaN fails (one pass instead of two).
            out.append(np.frombuffer(raw, dtype=">f8", count=n, offset=at + len(head)).astype(np.float64))
            at = end + 1
        text = self.read_raw_until(b"\n", command)
        if len(text) > 4096 or text[:1] == b"#":
            raise self.fault(f"{self.name}: last part of the reply to {_short(command)!r} is not an error entry: "
                             f"{quote(text)}")
        try:
            out.append(text[:-1].decode("ascii"))
        except UnicodeDecodeError:
            raise self.fault(f"{self.name}: garbled reply to {_short(command)!r}: {quote(text)}") from None
        return out

    # --- phases --------------------------------------------------------------------------------------------
    def settle(self, prefetch: str | None = None) -> tuple[int, int, float]:
        """Send what is buffered, start settling and return the first status (state, count, residual).

        ``prefetch`` ("MEAS:OUT? 1" or "MEAS:LOC? 1") rides in the same round trip; its reply is kept for the
        next :meth:`read_outputs` / :meth:`read_local` when the board reports settled, and dropped otherwise
        or as soon as any other command is sent.
        """
        queries: list[tuple[str, int | None]] = [("INIT;:STAT:SETT?", self._status_kind)]
        if prefetch:
            queries.append((prefetch, self._count(prefetch)))
        replies = self._exchange([], queries, "settling")
        status = self._status(replies[0], "STAT:SETT?")
        if prefetch and status[0] == 1:
            self._prefetched = (prefetch, self._checked(prefetch, replies[1]))
        return status

    def wait_settled(self, first: tuple[int, int, float], timeout_s: float, poll_s: float,
                     start: float) -> tuple[int, float]:
        """Poll the settle status from ``first`` (what :meth:`settle` returned) until settled; (count, residual).

        A board still settling after ``timeout_s`` since ``start`` (``time.monotonic()``), or one that reports
        failure, raises :class:`NotSettled`."""
        state, count, residual = first
        polls = 0
        while state == 0:
            if time.monotonic() - start > timeout_s:
                raise NotSettled(f"{self.name}: not settled after {timeout_s} s ({polls} status reads)")
            time.sleep(poll_s)
            state, count, residual = self.settle_status()
            polls += 1
        if state < 0:
            raise NotSettled(f"{self.name}: board reports it could not settle (residual {residual!r} V)")
        return count, residual

    def settle_status(self) -> tuple[int, int, float]:
        """Settle status: state 1 settled, 0 settling, -1 failed; the board's step count and residual (V)."""
        reply, = self._exchange([], [("STAT:SETT?", self._status_kind)], "a settle-status read")
        return self._status(reply, "STAT:SETT?")

    @property
    def _status_kind(self) -> int | None:
        """With binary blocks the settle status is a block of 3 float64 too: every part but the last (the error
        entry) then has a length known in advance, and a reply is read in two transport calls."""
        return 3 if self.data_format == "binary" else TEXT

    def _status(self, reply: str | np.ndarray, command: str) -> tuple[int, int, float]:
        if isinstance(reply, str):
            try:
                values = parse_floats(reply, 3, self.name, command)
            except InstrumentFault as exc:
                raise self.fault(str(exc)) from None
        else:
            values = reply
        state, count, residual = values.tolist()
        if not (math.isfinite(count) and math.isfinite(residual)) or state not in (-1.0, 0.0, 1.0) or count < 0 \
                or count != round(count) or residual < 0:
            raise self.fault(f"{self.name}: implausible settle status in reply to {command!r}: "
                             f"{quote(str(values.tolist()))}")
        return int(state), int(count), float(residual)

    def _count(self, command: str) -> int:
        info = self._require_info()
        return info.n_outputs if command.startswith("MEAS:OUT?") else info.catalog_size

    def _checked(self, command: str, values: np.ndarray) -> np.ndarray:
        """A measurement inside its physical range and not a stale copy of the previous one."""
        vmax = self._require_limits().max_voltage_v
        if command.startswith("MEAS:OUT?"):
            kind, lo, hi = "outputs", -vmax, vmax
            inside = bool(values.min() >= lo) and bool(values.max() <= hi)  # NaN fails both comparisons
        else:
            kind, (lo, hi) = "local terms", self._local_range
            inside = bool(np.all(values >= lo)) and bool(np.all(values <= hi))
        if not inside:
            outside = ~((values >= lo) & (values <= hi))
            worst = float(np.asarray(values)[outside][0])
            raise self.fault(f"{self.name}: {kind} value {worst!r} in reply to {_short(command)!r} is outside the "
                             f"physical range the limits imply (max_voltage_v = {vmax!r} V)")
        settings = (self._settings.get("INP:LEV?", b""), self._settings.get("OUTP:NUDG?", b""))
        last = self._last.get(kind)
        if last is not None and last[0] != settings and np.array_equal(last[1], values):
            raise self.fault(f"{self.name}: {kind} in reply to {_short(command)!r} repeat the previous reply although "
                             f"the inputs or the nudge changed: a stale reply")
        self._last[kind] = (settings, values)
        return values

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        """Output voltages (board order), mean of ``reads`` reads."""
        return self._measure(f"MEAS:OUT? {int(reads)}")

    def read_local(self, reads: int = 1) -> np.ndarray:
        """Local terms dE/dθ of every device, flat in catalog order (½ΔV² per conductance, −V per bias)."""
        return self._measure(f"MEAS:LOC? {int(reads)}")

    def _measure(self, command: str) -> np.ndarray:
        """The prefetched reply to ``command`` if it is the one waiting, else a fresh query."""
        if self._prefetched is not None and self._prefetched[0] == command and not self._pending:
            values = self._prefetched[1]
            self._prefetched = None
            return values
        values, = self._exchange([], [(command, self._count(command))], command.split("?")[0] + "?")
        return self._checked(command, values)

    def read_params(self) -> np.ndarray:
        """Parameters as measured, flat in catalog order (compared with what was programmed, when known)."""
        values, = self._exchange([], [("PAR?", self._require_info().catalog_size)], "PAR?")
        return self._verify(values, "PAR?").copy()  # the driver keeps its own copy as the expected state

    def _verify(self, values: np.ndarray, command: str, expected: np.ndarray | None = None) -> np.ndarray:
        """``values`` read back: within the precision of what was programmed (``expected``, default the driver's
        model) when that is known (it lies within the catalog's bounds), else within the bounds themselves.
        NaN fails every comparison made here."""
        expected = self._expected if expected is None else expected
        if expected is not None and not np.array_equal(values, expected):  # exact agreement: one cheap pass
            excess = np.abs(values - expected)
            excess -= READBACK_RTOL * np.abs(expected)
            if not excess.max() <= self.precision:
                off = ~(excess <= self.precision)
                k = int(np.flatnonzero(off)[0])
                raise self.fault(f"{self.name}: parameter {self._label(k)} reads back {float(values[k])!r} but "
                                 f"{float(expected[k])!r} was programmed ({int(off.sum())} of {off.size} off "
                                 f"by more than the precision {self.precision!r}): programming was not applied")
        elif expected is None:
            lo, hi = self._param_range
            outside = ~((values >= lo) & (values <= hi))
            if np.any(outside):
                k = int(np.flatnonzero(outside)[0])
                raise self.fault(f"{self.name}: parameter {self._label(k)} = {float(values[k])!r} in reply to "
                                 f"{command!r} is outside the catalog's bounds [{lo[k]!r}, {hi[k]!r}]")
        self._expected = values
        return values

    def _label(self, k: int) -> str:
        start = 0
        for p in self._require_info().params:
            if k < start + p.size:
                return f"{p.name}{[int(i) for i in np.unravel_index(k - start, p.shape)]}"
            start += p.size
        return str(k)

    def program_increments(self, flat: np.ndarray) -> None:
        """Request increments of every parameter (flat, catalog order); errors, and the read-back when due, in the
        same round trip."""
        self._steps += 1
        due = self.readback_every > 0 and self._steps % self.readback_every == 0
        self._program("PROG:INCR", flat, due)

    def program_values(self, flat: np.ndarray) -> None:
        """Program-and-verify every parameter to absolute values (restoring a checkpoint), read back at once."""
        self._program("PROG:SET", flat, True)

    def _program(self, header: str, flat: np.ndarray, readback: bool) -> None:
        info = self._require_info()
        flat = np.asarray(flat, dtype=np.float64).ravel()
        if flat.size != info.catalog_size:
            raise ValueError(f"{header}: expected {info.catalog_size} values, got {flat.size}")
        if header == "PROG:SET":
            expected: np.ndarray | None = flat.copy()
        elif self._expected is not None:
            expected = np.clip(self._expected + flat, *self._param_range)
        else:
            expected = None
        write = f"{header} ".encode("ascii") + self._encode(flat)
        if header == "PROG:INCR" and self.program_rides_along:
            if any(p.program for p in self._pending):  # one step waiting at most: each read-back has its model
                self._exchange([], [], header)
            self._pending.append(_Write(write, "PAR?" if readback else None, expected, info.catalog_size, True))
            self._prefetched = None
            self._expected = expected
            return
        queries: list[tuple[str, int | None]] = [("PAR?", info.catalog_size)] if readback else []
        replies = self._exchange([write], queries, header)
        self._expected = expected
        if readback:
            self._verify(replies[0], f"{header};:PAR?")

    def _require_info(self) -> BoardInfo:
        if self.info is None:
            raise RuntimeError(f"{self.name}: configure() first")
        return self.info
