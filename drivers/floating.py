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
from .crossbar import DATA_FORMATS, BoardInfo, CrossbarFrontEnd, _Write

__all__ = ["FloatingFrontEnd"]


class FloatingFrontEnd(CrossbarFrontEnd):
    """A floating front-end board: input levels, nudge, settle, outputs, knobs, coupling, averaged parameter reads.

    Every reply goes through the crossbar driver's checks (count, finiteness, range, error queue in the same
    round trip); parameter read-backs must lie within the catalog's bounds. Floating parameters drift with every
    step by design, so they are not compared with a programmed value (nothing is programmed).
    """

    knob_gain_v: float = 1.0

    def configure_floating(self) -> BoardInfo:
        """Identify the board, read its sizes, capabilities, catalog and gains; set the data format; drain errors."""
        identity = self.identify()
        sizes = parse_floats(self.query("CONF:SIZE?"), 2, self.name, "CONF:SIZE?")
        if not np.all((sizes >= 1) & (sizes <= 1 << 20) & (sizes == np.round(sizes))):
            raise self.fault(f"{self.name}: implausible sizes in reply to 'CONF:SIZE?': {sizes.tolist()}")
        caps = frozenset(c.strip() for c in self.query("SYST:CAP?").split(",") if c.strip())
        params = tuple(self._entry(text) for text in self.query("PAR:CAT?").split(","))
        gain = parse_float(self.query("INP:GAIN?"), self.name, "INP:GAIN?")
        knob_gain = parse_float(self.query("CTRL:GAIN?"), self.name, "CTRL:GAIN?")
        if not (gain > 0 and knob_gain > 0):
            raise self.fault(f"{self.name}: gains must be positive (input {gain!r} V, knob {knob_gain!r} V)")
        self.knob_gain_v = knob_gain
        self.write(f"FORM:DATA {DATA_FORMATS[self.data_format]}")
        self.check_errors("configuration")
        self.info = BoardInfo(identity, int(sizes[0]), int(sizes[1]), caps, params, gain)
        self._ranges()
        return self.info

    def set_knobs(self, flat: np.ndarray, window: tuple[float, float] | None = None) -> None:
        """Buffer ``CTRL:KNOB``: every knob (flat, catalog order) as DAC volts, checked before buffering."""
        flat = np.asarray(flat, dtype=np.float64)
        size = self._require_info().catalog_size
        if flat.size != size:
            raise ValueError(f"CTRL:KNOB: expected {size} values, got {flat.size}")
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
        self._pending.append(_Write(b"CTRL:KNOB " + self._encode(volts), None, None, 0))

    def set_coupling(self, eps: np.ndarray) -> None:
        """Buffer ``CTRL:EPS``: the coupling ε of each parameter group, catalog order."""
        eps = np.asarray(eps, dtype=np.float64)
        groups = len(self._require_info().params)
        if eps.size != groups or not np.all(np.isfinite(eps)) or np.any(eps <= 0):
            raise ValueError(f"CTRL:EPS: expected {groups} positive values, got {eps}")
        self._prefetched = None
        self._pending.append(_Write(f"CTRL:EPS {fmt_list(eps)}".encode("ascii"), None, None, 0))

    def read_params(self, reads: int = 1) -> np.ndarray:  # type: ignore[override]
        """Parameters as measured, mean of ``reads`` ADC reads, flat in catalog order, within the catalog's bounds."""
        command = f"PAR? {int(reads)}"
        values, = self._exchange([], [(command, self._require_info().catalog_size)], "PAR?")
        lo, hi = self._param_range
        outside = ~((values >= lo) & (values <= hi))  # NaN is outside
        if np.any(outside):
            k = int(np.flatnonzero(outside)[0])
            raise self.fault(f"{self.name}: parameter {self._label(k)} = {float(values[k])!r} in reply to "
                             f"{command!r} is outside the catalog's bounds [{lo[k]!r}, {hi[k]!r}]")
        return np.array(values, dtype=np.float64)

    def read_knobs(self) -> np.ndarray:
        """Knob values (parameter units) as the board holds them."""
        values, = self._exchange([], [("CTRL:KNOB?", self._require_info().catalog_size)], "CTRL:KNOB?")
        return np.asarray(values, dtype=np.float64) / self.knob_gain_v
