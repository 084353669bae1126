"""ArC TWO crossbar characterisation board through ``pyarc2`` (optional extra ``aeqprop[arc2]``).

``pyarc2`` is imported when a board is opened, so the rest of aeqprop works without it. Every operation
checks :class:`~aeqprop.drivers.base.Limits` before calling into the board. Calls follow pyarc2's
``Instrument`` API: ``read_one(low, high, vread)``, ``pulse_one(low, high, voltage, nanos)``,
``ground_all()``, ``finalise_operation(IdleMode.SoftGnd)``.
"""

from __future__ import annotations

from typing import Any

from aeqprop.system import AeqpropError

from .base import Limits

__all__ = ["ArcTwo", "MissingExtra"]


class MissingExtra(AeqpropError):
    """An optional dependency is not installed."""


def _pyarc2() -> Any:
    try:
        import pyarc2
    except ImportError:
        raise MissingExtra("the ArC TWO driver needs pyarc2: pip install 'aeqprop[arc2]'") from None
    return pyarc2


class ArcTwo:
    """One ArC TWO board: read and pulse single crosspoints (channels ``low``/``high``), grounded on close."""

    def __init__(self, firmware: str, limits: Limits, board_id: int | None = None) -> None:
        arc = _pyarc2()
        ids = arc.find_ids()
        if not ids:
            raise AeqpropError("no ArC TWO board found")
        self._arc = arc
        self.limits = limits
        self.board = arc.Instrument(ids[0] if board_id is None else board_id, firmware)
        self.name = "arc2"

    def read(self, low: int, high: int, vread: float) -> float:
        """Current through crosspoint (low, high) at ``vread`` volts (A)."""
        self.limits.check_voltage(vread, self.name, "read voltage")
        return float(self.board.read_one(low, high, vread))

    def pulse(self, low: int, high: int, volts: float, width_s: float) -> None:
        """One programming pulse across (low, high)."""
        self.limits.check_pulse(volts, width_s, self.name)
        self.board.pulse_one(low, high, volts, round(width_s * 1e9))

    def close(self) -> None:
        self.board.ground_all()
        self.board.finalise_operation(self._arc.IdleMode.SoftGnd)

    def __enter__(self) -> ArcTwo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
