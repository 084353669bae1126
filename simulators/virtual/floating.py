"""A floating-parameter system as a front-end board speaking the floating dialect (docs/agnostic.md).

The board's control knobs are DACs (``CTRL:KNOB``), its parameters are read back by ADCs (``PAR? N``, N
averaged reads), and the network relaxes by itself (``INIT``): the dialect of the crossbar board minus local
terms and programming, plus knobs and coupling. Transport-free like :class:`~.crossbar.CrossbarBoard`, whose
framing, data formats, error queue, fault injection and line log it shares.
"""

from __future__ import annotations

import numpy as np

from aeqprop.system import PhysicalSystem

from .crossbar import CrossbarBoard, _CommandError, _floats, _list
from .faults import FaultPlan

__all__ = ["FloatingBoard"]

IDN = "aeqprop,virtual-floating,0,0.1"
#: Commands of the crossbar dialect a floating board does not have (no local terms, nothing is programmed).
ABSENT = frozenset({"MEAS:LOC?", "PROG:INCR", "PROG:SET", "PROG:PULS:AMPL", "PROG:PULS:WIDT", "PROG:PULS?"})


class FloatingBoard(CrossbarBoard):
    """The floating dialect's instrument side, over any system offering ``homeostatic``.

    ``knob_gain_v`` is the DAC volts per unit of knob value (reported by ``CTRL:GAIN?``); the system sees knob
    values in parameter units.
    """

    def __init__(self, system: PhysicalSystem, *, input_gain_v: float = 1.0, knob_gain_v: float = 1.0,
                 faults: FaultPlan | None = None, max_errors: int = 32) -> None:
        if "homeostatic" not in system.spec.capabilities:
            raise ValueError("a floating board serves a system with capability 'homeostatic'")
        self.knob_gain_v = float(knob_gain_v)
        super().__init__(system, input_gain_v=input_gain_v, faults=faults, max_errors=max_errors)
        self._knobs = np.concatenate([np.ravel(v) for v in system.read_params().values()])

    def _execute(self, command: str) -> str | None:
        header, _, args = command.partition(" ")
        header = header.upper()
        args = args.strip()
        if header == "*IDN?":
            return IDN
        if header in ABSENT:
            raise _CommandError(-113, f"Undefined header; {header} (a floating board has no {header.split(':')[0]})")
        if header == "SYST:CAP?":
            return "homeostatic"
        if header == "CTRL:GAIN?":
            return repr(self.knob_gain_v)
        if header == "CTRL:KNOB":
            volts = self._values(args, sum(self._sizes), "CTRL:KNOB")
            self._knobs = volts / self.knob_gain_v
            self.system.set_controls(self._split(self._knobs))  # type: ignore[attr-defined]
            self._settle = (0, 0, 0.0)
            return None
        if header == "CTRL:KNOB?":
            return _list(self._knobs * self.knob_gain_v, self._form)
        if header == "CTRL:EPS":
            eps = _floats(args, len(self._names), "CTRL:EPS")
            set_coupling = getattr(self.system, "set_coupling", None)
            if set_coupling is None:
                raise _CommandError(-221, "Settings conflict; this board's coupling is fixed")
            set_coupling(dict(zip(self._names, eps.tolist(), strict=True)))
            self._settle = (0, 0, 0.0)
            return None
        if header == "PAR?":
            params = self.system.read_params(reads=self._reads(args))
            return _list(np.concatenate([np.ravel(params[n]) for n in self._names]), self._form)
        return super()._execute(command)
