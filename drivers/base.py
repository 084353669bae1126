"""The driver base: logged lines, typed faults, a bounded error-queue drain, one number format, safe limits.

Rules every driver inherits (STYLE.md, drivers/):

* every line sent or received is logged (logger ``aeqprop.drivers``, DEBUG, with the instrument's name);
* a transport failure or an unparseable reply raises :class:`~aeqprop.system.InstrumentFault` naming the
  instrument and the command;
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
import time
from collections.abc import Iterable, Sequence
from types import TracebackType

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from aeqprop.settings import Section
from aeqprop.system import InstrumentFault, LimitViolation

from .transport import Transport, TransportError

__all__ = ["Instrument", "Limits", "fmt", "fmt_hex", "fmt_list", "parse_float", "parse_floats", "parse_hex"]

log = logging.getLogger("aeqprop.drivers")

#: Error-queue entries read at most per drain; a queue that does not empty within it is itself a fault.
MAX_ERROR_ENTRIES = 16


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
    """Read a :func:`fmt_hex` reply of exactly ``count`` values, or raise InstrumentFault quoting it."""
    if len(text) != 16 * count:
        raise InstrumentFault(f"{who}: expected {count} hex values in reply to {command!r}, got {len(text)} characters "
                              f"starting {text[:40]!r}")
    try:
        return np.frombuffer(binascii.unhexlify(text), dtype=">f8").astype(np.float64)  # ~20 % faster than fromhex
    except (ValueError, binascii.Error):
        raise InstrumentFault(f"{who}: garbled reply to {command!r}: {text[:80]!r}") from None


def parse_float(text: str, who: str, command: str) -> float:
    """A reply read as one float, or :class:`InstrumentFault` quoting the raw text."""
    try:
        return float(text)
    except ValueError:
        raise InstrumentFault(f"{who}: garbled reply to {command!r}: {text[:80]!r}") from None


def parse_floats(text: str, count: int | None, who: str, command: str) -> np.ndarray:
    """A comma-separated reply read as floats (exactly ``count`` of them when given)."""
    try:
        values = np.array([float(t) for t in text.split(",")], dtype=np.float64)
    except ValueError:
        raise InstrumentFault(f"{who}: garbled reply to {command!r}: {text[:80]!r}") from None
    if count is not None and values.size != count:
        raise InstrumentFault(f"{who}: expected {count} values in reply to {command!r}, got {values.size}")
    return values


class Limits(Section):
    """Safety limits of one rig, declared once (protocol ``[system.limits]``) and checked before sending.

    Validators raise :class:`LimitViolation` naming the owner, the value and the limit; nothing is clamped.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_voltage_v: float = Field(gt=0, description="Largest |voltage| any source may apply (V).")
    max_current_a: float = Field(gt=0, description="Largest current compliance any source may be given (A).")
    max_pulse_v: float | None = Field(default=None, gt=0, description="Largest |pulse amplitude| (V); default max_voltage_v.")
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
    """

    write_termination = "\n"
    read_termination = "\n"
    #: Query returning the next error-queue entry (SCPI); TSP instruments override :meth:`next_error`.
    error_query = ":SYST:ERR?"

    def __init__(self, transport: Transport, name: str | None = None, limits: Limits | None = None) -> None:
        self.transport = transport
        self.name = name or type(self).__name__.lower()
        self.limits = limits
        #: Replies read so far: zero means the instrument never answered (nothing to switch off yet).
        self.replies = 0
        #: Seconds spent sending commands and waiting for replies: the measured instrument time.
        self.busy_s = 0.0

    # --- lines ---------------------------------------------------------------------------------------------
    def write(self, command: str) -> None:
        """Send one command line."""
        log.debug("%s << %s", self.name, command)
        start = time.perf_counter()
        try:
            self.transport.write((command + self.write_termination).encode("ascii"))
        except TransportError as exc:
            raise InstrumentFault(f"{self.name}: sending {_short(command)!r} failed: {exc}") from exc
        finally:
            self.busy_s += time.perf_counter() - start

    def read(self, command: str = "") -> str:
        """Read one reply line (``command`` names what it answers, for the error message)."""
        term = self.read_termination.encode("ascii")
        start = time.perf_counter()
        try:
            raw = self.transport.read_line(term)
        except TransportError as exc:
            raise InstrumentFault(f"{self.name}: no reply to {_short(command)!r}: {exc}") from exc
        finally:
            self.busy_s += time.perf_counter() - start
        try:
            text = raw[: -len(term)].decode("ascii")
        except UnicodeDecodeError:
            raise InstrumentFault(f"{self.name}: garbled reply to {_short(command)!r}: {raw[:80]!r}") from None
        log.debug("%s >> %s", self.name, text)
        self.replies += 1
        return text

    def query(self, command: str) -> str:
        """Send a command line and read its one-line reply."""
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
            raise InstrumentFault(f"{self.name}: garbled reply to '*OPC?': {reply[:80]!r}")

    # --- errors --------------------------------------------------------------------------------------------
    def next_error(self) -> tuple[int, str]:
        """The next error-queue entry as (code, message); code 0 means the queue is empty."""
        reply = self.query(self.error_query)
        code, _, message = reply.partition(",")
        try:
            return int(code), message.strip().strip('"')
        except ValueError:
            raise InstrumentFault(f"{self.name}: garbled reply to {self.error_query!r}: {reply[:80]!r}") from None

    def check_errors(self, after: str = "configuration") -> None:
        """Drain the error queue (at most :data:`MAX_ERROR_ENTRIES` reads); any entry raises InstrumentFault."""
        errors: list[str] = []
        for _ in range(MAX_ERROR_ENTRIES):
            code, message = self.next_error()
            if code == 0:
                break
            errors.append(f"{code} {message}")
        else:
            errors.append(f"(queue not empty after {MAX_ERROR_ENTRIES} reads)")
        if errors:
            raise InstrumentFault(f"{self.name}: instrument errors after {after}: " + "; ".join(errors))

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
        except Exception as close_exc:  # noqa: BLE001 - the original failure is the one to report
            log.error("%s: could not switch outputs off after %s: %s", self.name, kind.__name__, close_exc)

    def _require_limits(self) -> Limits:
        if self.limits is None:
            raise LimitViolation(f"{self.name}: no limits configured; refusing to source anything")
        return self.limits


def _short(command: str) -> str:
    return command if len(command) <= 60 else command[:57] + "..."
