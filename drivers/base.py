"""The driver base: logged lines, typed faults, a bounded error-queue drain, one number format, safe limits.

Rules every driver inherits:

* every line sent or received is logged (logger ``aeqprop.drivers``, DEBUG, with the instrument's name);
* a transport failure or an unparseable reply raises :class:`~aeqprop.system.InstrumentFault` naming the
  instrument and the command, quoting the reply within a bound (:func:`quote`); NaN and inf are never data;
* after such a fault the link is dirty: the next query first clears it (:meth:`Instrument.clear_link`);
* :meth:`Instrument.identify` sends ``*CLS`` and ``*IDN?`` and refuses an instrument of another model;
* :meth:`Instrument.check_errors` drains the error queue with a bound; any entry raises;
* numbers go out in one canonical form, :func:`fmt` (``repr`` of a float: round-trip exact);
* :class:`Limits` are declared once; its validators raise :class:`~aeqprop.system.LimitViolation` before a
  byte is sent and never clamp;
* :meth:`Instrument.close` switches outputs off; use instruments as context managers, so that any exception
  leaves the outputs off too.
"""

from __future__ import annotations

import binascii
import logging
import math
import re
import time
from collections.abc import Iterable, Sequence
from types import TracebackType

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from aeqprop.settings import Section
from aeqprop.system import InstrumentFault, LimitViolation

from .transport import Transport, TransportError

__all__ = ["Instrument", "Limits", "fmt", "fmt_hex", "fmt_list", "parse_float", "parse_floats", "parse_hex", "quote"]

log = logging.getLogger("aeqprop.drivers")

#: Error-queue entries read at most per drain; a queue that does not empty within it is itself a fault.
MAX_ERROR_ENTRIES = 16
#: Lines read at most while clearing a link before the fresh reply must have come.
CLEAR_LINES = 4096
#: Characters of a reply quoted in an error message at most (a misbehaving device may send megabytes).
QUOTE_CHARS = 60


def quote(reply: str | bytes, limit: int = QUOTE_CHARS) -> str:
    """``repr`` of at most ``limit`` characters of a reply, with its full length when cut: one bounded line."""
    if len(reply) <= limit:
        return repr(reply)
    return f"{reply[:limit]!r}... ({len(reply)} {'bytes' if isinstance(reply, bytes) else 'characters'})"


def fmt(value: float) -> str:
    """The canonical number format: ``repr`` of the float (shortest string that reads back exactly)."""
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"refusing to send a non-finite number {number!r}")
    return repr(number)


def fmt_list(values: Iterable[float] | np.ndarray) -> str:
    """Comma-separated :func:`fmt` of every value (flattened, C order)."""
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(flat)):
        raise ValueError("refusing to send non-finite numbers")
    return ",".join(map(repr, flat.tolist()))


def fmt_hex(values: Iterable[float] | np.ndarray) -> str:
    """Bulk form of the canonical format: IEEE-754 float64, big-endian, 16 hex digits per value, no separator.

    Exact like :func:`fmt`, ASCII-safe for line protocols, and an order of magnitude cheaper to write and
    read than decimal text for thousands of values.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(flat)):
        raise ValueError("refusing to send non-finite numbers")
    return flat.astype(">f8").tobytes().hex()


def parse_hex(text: str, count: int, who: str, command: str) -> np.ndarray:
    """Read a :func:`fmt_hex` reply of exactly ``count`` finite values, or raise InstrumentFault quoting it."""
    if len(text) != 16 * count:
        raise InstrumentFault(f"{who}: expected {count} hex values in reply to {_short(command)!r}, got "
                              f"{len(text)} characters: {quote(text)}")
    try:
        values = np.frombuffer(binascii.unhexlify(text), dtype=">f8").astype(np.float64)  # faster than fromhex
    except (ValueError, binascii.Error):
        raise InstrumentFault(f"{who}: garbled reply to {_short(command)!r}: {quote(text)}") from None
    return check_finite(values, who, command)


def parse_float(text: str, who: str, command: str) -> float:
    """A reply read as one finite float, or :class:`InstrumentFault` quoting the raw text."""
    try:
        value = float(text)
    except ValueError:
        raise InstrumentFault(f"{who}: garbled reply to {_short(command)!r}: {quote(text)}") from None
    if not math.isfinite(value):
        raise InstrumentFault(f"{who}: non-finite value in reply to {_short(command)!r}: {quote(text)}")
    return value


def parse_floats(text: str, count: int | None, who: str, command: str) -> np.ndarray:
    """A comma-separated reply read as finite floats (exactly ``count`` of them when given)."""
    try:
        values = np.array([float(t) for t in text.split(",")], dtype=np.float64)
    except ValueError:
        raise InstrumentFault(f"{who}: garbled reply to {_short(command)!r}: {quote(text)}") from None
    if count is not None and values.size != count:
        raise InstrumentFault(f"{who}: expected {count} values in reply to {_short(command)!r}, got {values.size}: "
                              f"{quote(text)}")
    return check_finite(values, who, command)


def check_finite(values: np.ndarray, who: str, command: str) -> np.ndarray:
    """``values`` unchanged when all are finite; NaN or inf from an instrument is a fault, never data."""
    if not np.all(np.isfinite(values)):
        bad = int(np.sum(~np.isfinite(values)))
        raise InstrumentFault(f"{who}: {bad} non-finite value(s) (NaN/inf) in reply to {_short(command)!r}")
    return values


class Limits(Section):
    """Safety limits of one rig, declared once (protocol ``[system.limits]``) and checked before sending.

    Validators raise :class:`LimitViolation` naming the owner, the value and the limit; nothing is clamped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_voltage_v: float = Field(gt=0, description="Largest |voltage| any source may apply (V).")
    max_current_a: float = Field(gt=0, description="Largest current compliance any source may be given (A).")
    max_pulse_v: float | None = Field(
        default=None, gt=0, description="Largest |pulse amplitude| (V); default max_voltage_v."
    )
    max_pulse_width_s: float = Field(default=1e-3, gt=0, description="Longest programming pulse (s).")
    min_pulse_width_s: float = Field(default=0.0, ge=0, description="Shortest programming pulse (s).")

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.max_pulse_v is not None and self.max_pulse_v > self.max_voltage_v:
            raise ValueError(f"max_pulse_v {self.max_pulse_v} exceeds max_voltage_v {self.max_voltage_v}")
        if self.min_pulse_width_s > self.max_pulse_width_s:
            raise ValueError("min_pulse_width_s exceeds max_pulse_width_s")
        return self

    @property
    def pulse_v(self) -> float:
        return self.max_voltage_v if self.max_pulse_v is None else self.max_pulse_v

    def check_voltage(self, volts: float | np.ndarray, owner: str, what: str = "voltage") -> None:
        """Raise unless every |volts| <= max_voltage_v (and finite)."""
        _check_abs(volts, self.max_voltage_v, owner, what, "V", "max_voltage_v")

    def check_compliance(self, amps: float, owner: str) -> None:
        """Raise unless 0 < amps <= max_current_a."""
        if not (math.isfinite(amps) and 0 < amps <= self.max_current_a):
            raise LimitViolation(
                f"{owner}: current compliance {amps!r} A is outside (0, {self.max_current_a!r}] A "
                f"(limit max_current_a); nothing was sent"
            )

    def check_current(self, amps: float | np.ndarray, owner: str, what: str = "current") -> None:
        """Raise unless every |amps| <= max_current_a (and finite): sourced currents, e.g. bias sources."""
        _check_abs(amps, self.max_current_a, owner, what, "A", "max_current_a")

    def check_pulse(self, amplitude_v: float | np.ndarray, width_s: float, owner: str) -> None:
        """Raise unless every |amplitude| <= the pulse limit and min <= width <= max pulse width."""
        _check_abs(amplitude_v, self.pulse_v, owner, "pulse amplitude", "V", "max_pulse_v")
        if not (math.isfinite(width_s) and self.min_pulse_width_s <= width_s <= self.max_pulse_width_s):
            raise LimitViolation(
                f"{owner}: pulse width {width_s!r} s is outside [{self.min_pulse_width_s!r}, "
                f"{self.max_pulse_width_s!r}] s (limits min/max_pulse_width_s); nothing was sent"
            )


def _check_abs(values: float | np.ndarray, limit: float, owner: str, what: str, unit: str, name: str) -> None:
    arr = np.asarray(values, dtype=np.float64)
    if arr.size == 0:
        return
    worst = float(np.max(np.abs(arr)))  # one pass: NaN and inf propagate into the maximum
    if not math.isfinite(worst):
        raise LimitViolation(f"{owner}: non-finite {what}; nothing was sent")
    if worst > limit:
        raise LimitViolation(
            f"{owner}: {what} {worst!r} {unit} exceeds the limit ±{limit!r} {unit} ({name}); nothing was sent"
        )


class Instrument:
    """One instrument over a :class:`Transport`: logged lines, typed faults, error queue, outputs off on exit.

    Subclasses set the terminations and :attr:`error_query`, and implement :meth:`output_off` and, where the
    error format differs from SCPI's ``<code>,"<message>"``, :meth:`next_error`.

    After a timeout or a reply that could not be trusted the link is *dirty*: a late reply may still be on its
    way and would be read as the answer to the next query. The next query therefore first clears the link
    (:meth:`clear_link`: discard what is waiting, then read up to the answer of a fresh ``*IDN?``/``*OPC?``).
    """

    write_termination = "\n"
    read_termination = "\n"
    #: Query returning the next error-queue entry (SCPI); TSP instruments override :meth:`next_error`.
    error_query = ":SYST:ERR?"
    #: Pattern the ``*IDN?`` reply must contain (regex, case-insensitive) for :meth:`identify` to accept it.
    model_marker: str | None = None

    def __init__(self, transport: Transport, name: str | None = None, limits: Limits | None = None) -> None:
        self.transport = transport
        self.name = name or type(self).__name__.lower()
        self.limits = limits
        #: Replies read so far: zero means the instrument never answered (nothing to switch off yet).
        self.replies = 0
        #: The ``*IDN?`` reply read by :meth:`identify` (used to recognise a fresh reply when clearing the link).
        self.identity: str | None = None
        self._dirty = False
        #: Seconds spent sending commands and waiting for replies: the measured instrument time.
        self.busy_s = 0.0

    # --- lines ---------------------------------------------------------------------------------------------
    def fault(self, message: str) -> InstrumentFault:
        """An :class:`InstrumentFault` for ``message``; the link is marked dirty (cleared before the next query)."""
        self._dirty = True
        return InstrumentFault(message)

    def write(self, command: str) -> None:
        """Send one command line."""
        self.write_raw(command.encode("ascii"))

    def write_raw(self, data: bytes) -> None:
        """Send one command line given as bytes (may hold binary blocks); the termination is appended."""
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s << %s", self.name, quote(data, 200))
        start = time.perf_counter()
        try:
            self.transport.write(data + self.write_termination.encode("ascii"))
        except TransportError as exc:
            raise self.fault(f"{self.name}: sending {quote(data.decode('latin-1'))} failed: {exc}") from exc
        finally:
            self.busy_s += time.perf_counter() - start

    def read(self, command: str = "") -> str:
        """Read one reply line (``command`` names what it answers, for the error message)."""
        raw = self.read_raw_until(self.read_termination.encode("ascii"), command)
        try:
            return raw[:-1].decode("ascii")
        except UnicodeDecodeError:
            raise self.fault(f"{self.name}: garbled reply to {_short(command)!r}: {quote(raw)}") from None

    def read_raw_until(self, termination: bytes, command: str) -> bytes:
        """Bytes up to and including ``termination``; a timeout or closed link is a fault."""
        start = time.perf_counter()
        try:
            raw = self.transport.read_line(termination)
        except TransportError as exc:
            raise self.fault(f"{self.name}: no reply to {_short(command)!r}: {exc}") from exc
        finally:
            self.busy_s += time.perf_counter() - start
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s >> %s", self.name, quote(raw, 200))
        self.replies += 1
        return raw

    def read_exact(self, count: int, command: str) -> bytes:
        """Exactly ``count`` bytes of a reply (binary block payloads)."""
        start = time.perf_counter()
        try:
            return self.transport.read_exact(count)
        except TransportError as exc:
            raise self.fault(f"{self.name}: reply to {_short(command)!r} cut short: {exc}") from exc
        finally:
            self.busy_s += time.perf_counter() - start

    def query(self, command: str) -> str:
        """Send a command line and read its one-line reply (clearing a dirty link first)."""
        if self._dirty:
            self.clear_link()
        self.write(command)
        return self.read(command)

    def query_float(self, command: str) -> float:
        return parse_float(self.query(command), self.name, command)

    def sync(self) -> None:
        """Wait until every command sent so far has been executed (IEEE 488.2 ``*OPC?`` answers ``1``).

        Needed wherever another instrument's measurement depends on a write-only command to this one.
        """
        reply = self.query("*OPC?")
        if reply.strip() != "1":
            raise self.fault(f"{self.name}: garbled reply to '*OPC?': {quote(reply)}")

    def clear_link(self) -> None:
        """Discard late replies: drop what is waiting, then read up to the answer of a fresh query.

        The fresh query is ``*IDN?`` when the identity is known (its reply cannot be mistaken for a late
        numeric reply), followed by ``*OPC?`` that must answer ``1`` at once. Failing that is a fault.
        """
        self._dirty = False
        try:
            self.transport.discard()
        except TransportError as exc:
            raise self.fault(f"{self.name}: cannot clear the link: {exc}") from exc
        if self.identity is not None:
            self.write("*IDN?")
            marker = self.identity.encode("ascii", "replace") + self.read_termination.encode("ascii")
            skipped = 0
            while self.read_raw_until(self.read_termination.encode("ascii"), "*IDN?") != marker:
                skipped += 1  # a late reply (binary blocks may hold many line ends): bounded
                if skipped > CLEAR_LINES:
                    raise self.fault(f"{self.name}: link not cleared: no fresh '*IDN?' reply among {CLEAR_LINES} lines")
        self.write("*OPC?")
        reply = self.read("*OPC?")
        if reply.strip() != "1":
            raise self.fault(f"{self.name}: link not cleared: '*OPC?' answered {quote(reply)}")

    def identify(self) -> str:
        """``*CLS`` (stale errors are not ours) and ``*IDN?``; refuse an instrument of another model."""
        self.write("*CLS")
        identity = self.query("*IDN?").strip()
        if not identity or (self.model_marker is not None and not re.search(self.model_marker, identity, re.I)):
            raise self.fault(f"{self.name}: '*IDN?' answered {quote(identity)}, expected a "
                             f"{self.model_marker or 'non-empty identity'}; refusing to drive it")
        self.identity = identity
        return identity

    # --- errors --------------------------------------------------------------------------------------------
    def next_error(self) -> tuple[int, str]:
        """The next error-queue entry as (code, message); code 0 means the queue is empty."""
        return self.parse_error(self.query(self.error_query))

    def parse_error(self, reply: str) -> tuple[int, str]:
        """``<code>,"<message>"`` read as (code, message), or a fault quoting the reply."""
        code, _, message = reply.partition(",")
        try:
            return int(code), message.strip().strip('"')[:200]
        except ValueError:
            raise self.fault(f"{self.name}: garbled reply to {self.error_query!r}: {quote(reply)}") from None

    def check_errors(self, after: str = "configuration", first: tuple[int, str] | None = None) -> None:
        """Drain the error queue (at most :data:`MAX_ERROR_ENTRIES` reads); any entry raises InstrumentFault.

        ``first`` is an entry already read (e.g. from a compound reply)."""
        errors: list[str] = []
        if first is not None and first[0] != 0:
            errors.append(f"{first[0]} {first[1]}")
        if first is None or first[0] != 0:
            for _ in range(MAX_ERROR_ENTRIES):
                code, message = self.next_error()
                if code == 0:
                    break
                errors.append(f"{code} {message}")
            else:
                errors.append(f"(queue not empty after {MAX_ERROR_ENTRIES} reads)")
        if errors:
            raise InstrumentFault(f"{self.name}: instrument errors after {after}: " + "; ".join(errors)[:400])

    def write_all(self, commands: Sequence[str], after: str) -> None:
        """Send configuration lines, then drain the error queue."""
        for command in commands:
            self.write(command)
        self.check_errors(after)

    # --- safety --------------------------------------------------------------------------------------------
    def output_off(self) -> None:
        """Switch every output off (drivers with outputs override this)."""

    def close(self) -> None:
        """Switch outputs off, then release the transport, whatever happens in between."""
        try:
            self.output_off()
        finally:
            self.transport.close()

    def __enter__(self) -> Instrument:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.close()
        except Exception as close_exc:
            log.error("%s: could not switch outputs off after %s: %s", self.name, kind.__name__, close_exc)

    def _require_limits(self) -> Limits:
        if self.limits is None:
            raise LimitViolation(f"{self.name}: no limits configured; refusing to source anything")
        return self.limits


def _short(command: str) -> str:
    return command if len(command) <= 60 else command[:57] + "..."
