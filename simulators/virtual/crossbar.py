"""A simulated system as a crossbar front-end board speaking our SCPI dialect (README, "Crossbar front-end").

The board logic is transport-free: :meth:`CrossbarBoard.process` takes one received line and returns what
to send back (and which injected fault applies). :mod:`.servers` puts it on a TCP port or a pty. Every line
received is appended to :attr:`CrossbarBoard.log` before it is acted on, so a test can prove what was (or
was not) sent.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass

import numpy as np

from aeqprop.system import AeqpropError, PhysicalSystem

from .faults import Fault, FaultPlan
from .scpi import BlockError, block, parse_block, split_units

__all__ = ["CrossbarBoard", "Reply"]

IDN = "aeqprop,virtual-crossbar,0,0.1"
#: Capabilities the crossbar dialect has commands for; a served system may offer more (e.g. stepwise).
DIALECT_CAPABILITIES = frozenset({"local", "program"})


@dataclass(frozen=True)
class Reply:
    """What a transport sends for one received line: ``text`` (None: nothing) and the fault that applies."""

    text: str | None
    fault: Fault | None = None


class _CommandError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _floats(args: str, count: int, what: str) -> np.ndarray:
    try:
        values = np.array([float(t) for t in args.split(",")], dtype=np.float64)
    except ValueError:
        raise _CommandError(-224, f"Illegal parameter value; {what}") from None
    if values.size != count:
        raise _CommandError(-109 if values.size < count else -108,
                            f"{what}: expected {count} values, got {values.size}")
    return values


def _hex_floats(args: str, count: int, what: str) -> np.ndarray:
    if len(args) != 16 * count:
        raise _CommandError(-109 if len(args) < 16 * count else -108,
                            f"{what}: expected {count} hex values, got {len(args)} characters")
    try:
        return np.frombuffer(bytes.fromhex(args), dtype=">f8").astype(np.float64)
    except ValueError:
        raise _CommandError(-224, f"Illegal parameter value; {what}") from None


def _list(values: np.ndarray, form: str = "ASC") -> str:
    flat = np.asarray(values, dtype=np.float64).ravel()
    if form == "REAL":
        return block(flat)
    if form == "HEX":
        return flat.astype(">f8").tobytes().hex()
    return ",".join(map(repr, flat.tolist()))


def _trim(text: str) -> str:
    """Whitespace off both ends, but never off the end of a binary block (its payload may end in any byte)."""
    text = text.lstrip()
    return text if "#" in text else text.rstrip()


def _block_floats(args: str, count: int, what: str) -> np.ndarray:
    try:
        return parse_block(args, count)
    except BlockError as exc:
        raise _CommandError(-160, f"Block data error; {what}: {exc}") from None


class CrossbarBoard:
    """The dialect's instrument side, over any system offering ``local`` and ``program``.

    ``input_gain_v`` is the volts applied per unit of input level (reported by ``INP:GAIN?``).
    """

    def __init__(self, system: PhysicalSystem, *, input_gain_v: float = 1.0, faults: FaultPlan | None = None,
                 max_errors: int = 32) -> None:
        self.system = system
        self.input_gain_v = float(input_gain_v)
        self.faults = faults or FaultPlan()
        self.log: list[str] = []
        #: Optional text file that every received line is appended to (``aeqprop serve --log``).
        self.log_file = None
        self.errors: deque[tuple[int, str]] = deque(maxlen=max_errors)
        self._lock = threading.Lock()
        spec = system.spec
        self._names = list(spec.params)
        self._shapes = [spec.params[n].shape for n in self._names]
        self._sizes = [int(np.prod(s)) for s in self._shapes]
        self._reset()

    # --- the line interface ------------------------------------------------------------------------------
    def process(self, line: str) -> Reply:
        """Log ``line``, execute its ``;``-separated commands and return the joined query replies."""
        with self._lock:
            self.log.append(line)
            if self.log_file is not None:
                self.log_file.write(line + "\n")
            fired = self.faults.at(len(self.log))
            replies: list[str] = []
            for part in split_units(line):
                command = _trim(part).lstrip(":")
                if not command:
                    continue
                try:
                    answer = self._execute(command)
                except _CommandError as exc:
                    self.errors.append((exc.code, exc.message))
                    continue
                except (ValueError, RuntimeError, KeyError, AeqpropError) as exc:
                    self.errors.append((-200, f"Execution error; {exc}"))
                    continue
                if answer is not None:
                    replies.append(answer)
            fault = None
            for f in fired:
                if f.kind == "error":
                    self.errors.append((-310, "System error; injected fault"))
                else:
                    fault = f
            return Reply(";".join(replies) if replies else None, fault)

    # --- commands ------------------------------------------------------------------------------------------
    def _reset(self) -> None:
        spec = self.system.spec
        self._levels = np.zeros(spec.n_inputs)
        self._output_on = False
        self._settle = (0, 0, 0.0)
        self._pulse = (0.0, 0.0)
        self._form = "ASC"
        self._nudge = np.zeros(1 + spec.n_outputs)

    def _execute(self, command: str) -> str | None:
        header, _, args = command.partition(" ")
        header = header.upper()
        args = _trim(args)
        spec = self.system.spec
        if header == "*IDN?":
            return IDN
        if header == "*RST":
            self._reset()
            self.system.nudge(0.0)
            return None
        if header == "*CLS":
            self.errors.clear()
            return None
        if header == "*OPC?":
            return "1"
        if header == "SYST:ERR?":
            if not self.errors:
                return '0,"No error"'
            code, message = self.errors.popleft()
            return f'{code},"{message}"'
        if header == "SYST:CAP?":
            return ",".join(sorted(spec.capabilities & DIALECT_CAPABILITIES))
        if header == "CONF:SIZE?":
            return f"{spec.n_inputs},{spec.n_outputs}"
        if header == "PAR:CAT?":
            return ",".join(self._catalog_entry(n) for n in self._names)
        if header == "INP:GAIN?":
            return repr(self.input_gain_v)
        if header == "INP:LEV":
            levels = self._values(args, spec.n_inputs, "INP:LEV")
            self.system.clamp(levels[None, :])
            self._levels = levels
            self._settle = (0, 0, 0.0)
            return None
        if header == "INP:LEV?":
            return _list(self._levels, self._form)
        if header == "OUTP:STAT":
            if args.upper() not in ("ON", "OFF", "1", "0"):
                raise _CommandError(-224, "Illegal parameter value; OUTP:STAT takes ON or OFF")
            self._output_on = args.upper() in ("ON", "1")
            return None
        if header == "OUTP:STAT?":
            return "1" if self._output_on else "0"
        if header == "OUTP:NUDG":
            if self._form == "REAL" and args.startswith("#"):  # beta and targets in one block
                values = _block_floats(args, 1 + spec.n_outputs, "OUTP:NUDG")
                beta, target = values[0], values[1:][None, :]
            else:
                first, _, rest = args.partition(",")
                beta = _floats(first, 1, "OUTP:NUDG beta")[0]
                target = None if not rest else self._values(rest, spec.n_outputs, "OUTP:NUDG targets")[None, :]
            self.system.nudge(float(beta), target)
            # OUTP:NUDG? reports the target in force: one given now, else the last one (the system keeps it)
            self._nudge = np.concatenate([[beta], self._nudge[1:] if target is None else target[0]])
            self._settle = (0, 0, 0.0)
            return None
        if header == "OUTP:NUDG?":
            return _list(self._nudge, self._form)
        if header == "INIT":
            if not self._output_on:
                raise _CommandError(-221, "Settings conflict; outputs are off")
            try:
                report = self.system.relax()
            except (AeqpropError, RuntimeError, ValueError) as exc:
                self._settle = (-1, 0, float("inf"))
                raise _CommandError(-200, f"Execution error; {exc}") from None
            self._settle = (1 if report.settled else -1, report.sweeps, float(report.residual))
            return None
        if header == "STAT:SETT?":
            state, count, residual = self._settle
            if self._form == "REAL":  # with binary blocks every numeric reply is one
                return _list(np.array([state, count, residual], dtype=np.float64), self._form)
            return f"{state},{count},{residual!r}"
        if header == "MEAS:OUT?":
            return _list(self.system.read_outputs(self._reads(args))[0], self._form)
        if header == "MEAS:LOC?":
            local = self.system.read_local(self._reads(args))
            return _list(np.concatenate([np.ravel(local[n]) for n in self._names]), self._form)
        if header == "PAR?":
            params = self.system.read_params()
            return _list(np.concatenate([np.ravel(params[n]) for n in self._names]), self._form)
        if header == "PROG:INCR":
            self.system.program(self._split(self._values(args, sum(self._sizes), "PROG:INCR")))
            return None
        if header == "PROG:SET":
            self._set_params(self._split(self._values(args, sum(self._sizes), "PROG:SET")))
            return None
        if header == "PROG:PULS:AMPL":
            self._pulse = (float(_floats(args, 1, "PROG:PULS:AMPL")[0]), self._pulse[1])
            return None
        if header == "PROG:PULS:WIDT":
            self._pulse = (self._pulse[0], float(_floats(args, 1, "PROG:PULS:WIDT")[0]))
            return None
        if header == "FORM:DATA":
            form = args.upper().replace(" ", "")
            if form not in ("ASC", "HEX", "REAL", "REAL,64"):
                raise _CommandError(-224, "Illegal parameter value; FORM:DATA takes ASC, HEX or REAL,64")
            self._form = form.split(",")[0]
            return None
        if header == "FORM:DATA?":
            return "REAL,64" if self._form == "REAL" else self._form
        if header == "PROG:PULS?":
            return f"{self._pulse[0]!r},{self._pulse[1]!r}"
        raise _CommandError(-113, f"Undefined header; {header}")

    # --- helpers -------------------------------------------------------------------------------------------
    def _catalog_entry(self, name: str) -> str:
        p = self.system.spec.params[name]
        low, high = (float("-inf") if p.bounds[0] is None else p.bounds[0],
                     float("inf") if p.bounds[1] is None else p.bounds[1])
        shape = "x".join(map(str, p.shape))
        return f"{name} {shape} {p.unit or '-'} {p.layer} {p.role} {low!r} {high!r}"

    def _values(self, args: str, count: int, what: str) -> np.ndarray:
        """A list argument in the present data format (FORM:DATA ASC or HEX)."""
        if self._form == "REAL":
            return _block_floats(args, count, what)
        if self._form == "HEX":
            return _hex_floats(args.strip(), count, what)
        return _floats(args, count, what)

    def _reads(self, args: str) -> int:
        if not args:
            return 1
        if not args.isdigit() or int(args) < 1:
            raise _CommandError(-224, f"Illegal parameter value; reads {args!r}")
        return int(args)

    def _split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        out, start = {}, 0
        for name, shape, size in zip(self._names, self._shapes, self._sizes, strict=True):
            out[name] = flat[start : start + size].reshape(shape)
            start += size
        return out

    def _set_params(self, values: dict[str, np.ndarray]) -> None:
        """Program-and-verify to absolute values: the simulated device takes them exactly."""
        snap = self.system.snapshot()
        for name, value in values.items():
            snap[f"param.{name}"] = value
        self.system.restore(snap)
