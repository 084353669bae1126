"""Diode models for the netlist, and each model's own law to check what ngspice returns.

Two families, from near-ideal to real:

* :class:`BehaviouralDiode`: a behavioural current source ``I = G_on * max(V_d, 0)``. Zero reverse current, a
  forward resistance of 1/G_on, piecewise linear, so Newton's method lands exactly on it in a few iterations.
  With G_on = 1e12 S a clamped node sits at -I/G_on (1e-11 V for amp-scale currents): the ideal diode of the
  resistive simulator, up to that offset.
* :class:`JunctionDiode`: SPICE's level-1 junction diode (Shockley law with series resistance; ngspice adds
  GMIN in parallel). Defaults are the 1N4148 small-signal diode: it conducts from about 0.6 V, so a network
  built with it is a different (real) circuit from the ideal one.

Each model can say, for a diode drop ``vd`` and the current ``i`` Kirchhoff's law says it carries, whether the
pair obeys the model. That check is how a wrong operating point (a known ngspice failure with tiny emission
coefficients, see the README) becomes an error instead of a silent wrong answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Thermal voltage kT/q at ngspice's default 27 °C, with ngspice's own constants.
THERMAL_VOLTAGE_V = 1.38064852e-23 * (27.0 + 273.15) / 1.6021766208e-19
#: ngspice's default GMIN, the conductance it puts across every junction (option ``gmin``).
SPICE_GMIN_S = 1e-12


def _fmt(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (ngspice parses Python's float repr)."""
    return repr(float(value))


@dataclass(frozen=True)
class BehaviouralDiode:
    """Near-ideal diode: ``I = g_on * max(V_anode - V_cathode, 0)``, zero reverse current."""

    g_on_s: float = 1e12

    def model_card(self) -> str:
        return ""

    def element(self, name: str, anode: str, cathode: str) -> str:
        # A B-source pushes its current from its first node through itself to its second node.
        return f"B{name} {anode} {cathode} I = {_fmt(self.g_on_s)}*max(v({anode})-v({cathode}), 0)"

    def current(self, vd: np.ndarray) -> np.ndarray:
        """Current from anode to cathode at drop ``vd`` (A)."""
        return self.g_on_s * np.maximum(vd, 0.0)

    def obeys(self, vd: np.ndarray, i: np.ndarray, tol_i: np.ndarray, tol_v: np.ndarray) -> np.ndarray:
        """True where (vd, i) lies on the model's curve within ``tol_i`` amperes or ``tol_v`` volts."""
        on_current = np.abs(i - self.current(vd)) <= tol_i
        on_voltage = (i > 0) & (np.abs(vd - i / self.g_on_s) <= tol_v)
        return on_current | on_voltage


@dataclass(frozen=True)
class JunctionDiode:
    """SPICE level-1 junction diode: saturation current ``is_a``, emission coefficient ``n``, series ``rs_ohm``."""

    is_a: float = 2.52e-9
    n: float = 1.752
    rs_ohm: float = 0.568

    def model_card(self) -> str:
        return f".model djunction D(IS={_fmt(self.is_a)} N={_fmt(self.n)} RS={_fmt(self.rs_ohm)})"

    def element(self, name: str, anode: str, cathode: str) -> str:
        return f"D{name} {anode} {cathode} djunction"

    @property
    def _vte(self) -> float:
        return self.n * THERMAL_VOLTAGE_V

    def junction_current(self, vj: np.ndarray) -> np.ndarray:
        """Current through the junction (and its GMIN) at junction drop ``vj`` (A), as ngspice computes it."""
        with np.errstate(over="ignore"):
            forward = self.is_a * np.expm1(vj / self._vte)
        # Below -3 n Vt ngspice replaces the exponential by a cubic that tends to -IS; both are -IS within 5 %.
        return forward + SPICE_GMIN_S * vj

    def obeys(self, vd: np.ndarray, i: np.ndarray, tol_i: np.ndarray, tol_v: np.ndarray) -> np.ndarray:
        """True where (vd, i) is on the diode law within ``tol_i`` A (reverse) or ``tol_v`` V (forward).

        Each side is checked where it is well conditioned: in reverse bias the current is pinned near -IS
        whatever the voltage, in forward bias the voltage is pinned by the logarithm whatever the current.
        """
        vj = vd - i * self.rs_ohm
        on_current = np.abs(i - self.junction_current(vj)) <= tol_i + 0.1 * self.is_a
        arg = (i - SPICE_GMIN_S * vj) / self.is_a
        with np.errstate(invalid="ignore", divide="ignore"):
            vj_pred = self._vte * np.log1p(np.where(arg > -1.0, arg, np.nan))
        on_voltage = np.abs(vd - (vj_pred + i * self.rs_ohm)) <= tol_v  # False where vj_pred is NaN
        return on_current | on_voltage


DiodeModel = BehaviouralDiode | JunctionDiode

__all__ = ["SPICE_GMIN_S", "THERMAL_VOLTAGE_V", "BehaviouralDiode", "DiodeModel", "JunctionDiode"]
