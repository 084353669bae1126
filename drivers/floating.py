"""Driver for a floating-parameter front-end board: knobs by DACs, parameters read back by ADCs (docs/agnostic.md).

The dialect is the crossbar board's (same framing, ``FORM:DATA HEX|ASC``, error queue, settle status) without
local terms or programming, plus ``CTRL:GAIN?``, ``CTRL:KNOB <list>``, ``CTRL:KNOB?``, ``CTRL:EPS <list>`` and
``PAR? <N>`` (N averaged read-backs). Knob voltages are checked against the limits, and knob values against
the protocol's knob window, before anything is buffered: a violation leaves nothing to send.
"""

from __future__ import annotations

import numpy as np

from aeqprop.system import LimitViolation

from .base import fmt_list, parse_float, parse_floats
from .crossbar import BoardInfo, CrossbarFrontEnd

__all__ = ["FloatingFrontEnd"]


class FloatingFrontEnd(CrossbarFrontEnd):
    """A floating front-end board: input levels, nudge, settle, outputs, knobs, coupling, averaged parameter reads."""

    knob_gain_v: float = 1.0

    def configure_floating(self) -> BoardInfo:
        """Read the board's identity, sizes, capabilities, catalog and gains; set the data format; drain errors."""
        self.write("*CLS")
        identity = self.query("*IDN?")
        sizes = parse_floats(self.query("CONF:SIZE?"), 2, self.name, "CONF:SIZE?")
        caps = frozenset(c.strip() for c in self.query("SYST:CAP?").split(",") if c.strip())
        params = tuple(self._entry(text) for text in self.query("PAR:CAT?").split(","))
        gain = parse_float(self.query("INP:GAIN?"), self.name, "INP:GAIN?")
        self.knob_gain_v = parse_float(self.query("CTRL:GAIN?"), self.name, "CTRL:GAIN?")
        self.write(f"FORM:DATA {'HEX' if self.data_format == 'hex' else 'ASC'}")
        self.check_errors("configuration")
        self.info = BoardInfo(identity, int(sizes[0]), int(sizes[1]), caps, params, gain)
        return self.info

    def set_knobs(self, flat: np.ndarray, window: tuple[float, float] | None = None) -> None:
        """Buffer ``CTRL:KNOB``: every knob (flat, catalog order) as DAC volts, checked before buffering."""
        flat = np.asarray(flat, dtype=np.float64)
        if flat.size != self._catalog_size():
            raise ValueError(f"CTRL:KNOB: expected {self._catalog_size()} values, got {flat.size}")
        if window is not None:
            low, high = window
            bad = (flat < low) | (flat > high) | ~np.isfinite(flat)
            if np.any(bad):
                worst = float(flat[bad][0])
                raise LimitViolation(f"{self.name}: knob value {worst!r} is outside the knob window [{low!r}, "
                                     f"{high!r}] (system.knob_window); nothing was sent")
        volts = flat * self.knob_gain_v
        self._require_limits().check_voltage(volts, self.name, "knob voltage")
        self._prefetched = None
        self._pending.append(f"CTRL:KNOB {self._encode(volts)}")

    def set_coupling(self, eps: np.ndarray) -> None:
        """Buffer ``CTRL:EPS``: the coupling ε of each parameter group, catalog order."""
        eps = np.asarray(eps, dtype=np.float64)
        if eps.size != len(self._require_info().params) or not np.all(np.isfinite(eps)) or np.any(eps <= 0):
            raise ValueError(f"CTRL:EPS: expected {len(self._require_info().params)} positive values, got {eps}")
        self._prefetched = None
        self._pending.append(f"CTRL:EPS {fmt_list(eps)}")

    def read_params(self, reads: int = 1) -> np.ndarray:  # type: ignore[override]
        """Parameters as measured, mean of ``reads`` ADC reads, flat in catalog order."""
        command = f"PAR? {int(reads)}"
        return self._decode(self._flush_query(command), self._catalog_size(), command)

    def read_knobs(self) -> np.ndarray:
        """Knob values (parameter units) as the board holds them."""
        return self._decode(self._flush_query("CTRL:KNOB?"), self._catalog_size(), "CTRL:KNOB?") / self.knob_gain_v
