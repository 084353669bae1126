"""A crossbar board that misbehaves on purpose: seeded faults in what it answers and in what it does.

:class:`MisbehavingBoard` is a :class:`~.crossbar.CrossbarBoard` with a list of misbehaviours, each firing once
on the first eligible command at or after a given line (``ignore-off`` stays on from then). It covers the ways a
real board lies that the driver must catch (test fixture for ``tests/drivers/test_misbehaving_board.py``):

===============  ==================================================================================
huge-local       one local term (``MEAS:LOC?``) becomes 1e6 V² (the physical maximum is ½(2 V_max)²)
huge-output      one output (``MEAS:OUT?``) becomes 1e4 V
nan / inf        one output is NaN / one local term is +inf
status-nan       the settle status (``STAT:SETT?``) says settled, with NaN steps and residual
count            one value missing from a ``MEAS:LOC?`` reply
repeat           ``MEAS:LOC?`` answered with the previous ``MEAS:LOC?`` reply (stale, e.g. +β served for −β)
ignore-levels    ``INP:LEV`` silently not applied
ignore-nudge     ``OUTP:NUDG`` silently not applied
ignore-program   ``PROG:INCR`` silently not applied
drift            ``PAR?`` reports one parameter 1e-3 off what the device holds
error-eval       an error queued while answering a ``MEAS:OUT?`` (e.g. during evaluation)
ignore-off       ``OUTP:STAT OFF`` ignored from then on (outputs stay on)
===============  ==================================================================================

Transport-level faults (:mod:`.faults`: delay, drop, garble, disconnect, late, giant) go in ``faults`` as
usual. :meth:`MisbehavingBoard.seeded` draws one misbehaviour of either family and its line from a seed.
Every ``PROG:INCR`` leaves the parameters it produced in :attr:`history`, so a test can tell what the
device held after each step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aeqprop.system import PhysicalSystem

from .crossbar import CrossbarBoard, _list
from .faults import Fault, FaultPlan
from .scpi import parse_block

__all__ = ["BOARD_KINDS", "LINK_KINDS", "MisbehavingBoard", "Misbehaviour"]

#: Misbehaviour -> the command headers it fires on.
ELIGIBLE = {
    "huge-local": ("MEAS:LOC?",), "inf": ("MEAS:LOC?",), "count": ("MEAS:LOC?",), "repeat": ("MEAS:LOC?",),
    "huge-output": ("MEAS:OUT?",), "nan": ("MEAS:OUT?",), "error-eval": ("MEAS:OUT?",),
    "status-nan": ("STAT:SETT?",), "ignore-levels": ("INP:LEV",), "ignore-nudge": ("OUTP:NUDG",),
    "ignore-program": ("PROG:INCR",), "drift": ("PAR?",), "ignore-off": ("OUTP:STAT",),
}
BOARD_KINDS: tuple[str, ...] = tuple(ELIGIBLE)
LINK_KINDS: tuple[str, ...] = ("delay", "drop", "garble", "disconnect", "late", "giant", "error")


@dataclass(frozen=True)
class Misbehaviour:
    kind: str
    at: int


class MisbehavingBoard(CrossbarBoard):
    """A crossbar board that misbehaves as told (see the module docstring); :attr:`fired` lists (kind, line)."""

    def __init__(self, system: PhysicalSystem, *, input_gain_v: float = 1.0, faults: FaultPlan | None = None,
                 misbehaviours: list[Misbehaviour] | None = None) -> None:
        super().__init__(system, input_gain_v=input_gain_v, faults=faults)
        self.misbehaviours = list(misbehaviours or [])
        unknown = [m.kind for m in self.misbehaviours if m.kind not in ELIGIBLE]
        if unknown:
            raise ValueError(f"unknown misbehaviours {unknown}; known: {', '.join(BOARD_KINDS)}")
        self.fired: list[tuple[str, int]] = []
        self.history: list[np.ndarray] = []
        self._answers: dict[str, str] = {}
        self._off_ignored = False

    @classmethod
    def seeded(cls, system: PhysicalSystem, seed: int, lines: tuple[int, int], *, input_gain_v: float = 1.0,
               kinds: tuple[str, ...] = BOARD_KINDS + LINK_KINDS, delay_s: float = 1.0) -> MisbehavingBoard:
        """One misbehaviour drawn from ``kinds`` at a line drawn from ``lines`` (inclusive), both from ``seed``."""
        rng = np.random.default_rng(seed)
        kind = str(rng.choice(kinds))
        at = int(rng.integers(lines[0], lines[1] + 1))
        if kind in BOARD_KINDS:
            return cls(system, input_gain_v=input_gain_v, misbehaviours=[Misbehaviour(kind, at)])
        plan = FaultPlan([Fault(kind, at, delay_s if kind == "delay" else 0.0)])  # type: ignore[arg-type]
        return cls(system, input_gain_v=input_gain_v, faults=plan)

    def _due(self, header: str, args: str) -> str | None:
        line = len(self.log)
        if header == "OUTP:STAT" and args.upper() in ("OFF", "0") and self._off_ignored:
            return "ignore-off"
        for m in self.misbehaviours:
            if m.at <= line and header in ELIGIBLE[m.kind]:
                if m.kind == "ignore-off" and args.upper() not in ("OFF", "0"):
                    continue
                if m.kind == "repeat" and header not in self._answers:
                    continue
                self.misbehaviours.remove(m)
                self.fired.append((m.kind, line))
                self._off_ignored |= m.kind == "ignore-off"
                return m.kind
        return None

    def _execute(self, command: str) -> str | None:
        header, _, args = command.partition(" ")
        header = header.upper()
        kind = self._due(header, args.strip())
        if kind in ("ignore-levels", "ignore-nudge", "ignore-program", "ignore-off"):
            return None
        if kind == "repeat":
            return self._answers[header]
        answer = super()._execute(command)
        if header == "PROG:INCR":
            params = self.system.read_params()
            self.history.append(np.concatenate([np.ravel(params[n]) for n in self._names]))
        if kind == "error-eval":
            self.errors.append((-200, "Execution error; injected while measuring"))
        if kind == "status-nan":
            answer = _list(np.array([1.0, np.nan, np.nan]), self._form) if self._form == "REAL" else "1,nan,nan"
        elif kind is not None and answer is not None:
            answer = self._tamper(kind, answer)
        if answer is not None:
            self._answers[header] = answer
        return answer

    def _tamper(self, kind: str, answer: str) -> str:
        values = self._decode(answer)
        if kind == "huge-local":
            values[0] = 1e6
        elif kind == "huge-output":
            values[0] = 1e4
        elif kind == "nan":
            values[0] = np.nan
        elif kind == "inf":
            values[-1] = np.inf
        elif kind == "count":
            values = values[:-1]
        elif kind == "drift":
            values[0] += 1e-3
        return _list(values, self._form)

    def _decode(self, answer: str) -> np.ndarray:
        if self._form == "REAL":
            return parse_block(answer, (len(answer) - 2 - int(answer[1])) // 8).copy()
        if self._form == "HEX":
            return np.frombuffer(bytes.fromhex(answer), dtype=">f8").astype(np.float64)
        return np.array([float(t) for t in answer.split(",")])
