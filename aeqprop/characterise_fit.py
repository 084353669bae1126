"""Fit the measured pulse trains to the device model of :mod:`aeqprop.devicemodel`, device by device.

Window: the plateaus at the ends of the trains (last eighth of each train, median over cycles). Read noise:
standard deviation over mean of the repeated reads at the top of the window. Stuck devices: a window below a
quarter of the median window; they are listed and left out of every pooled figure.

Levels and nonlinearities are fitted on the *one-step map* of each train (the conductance after ``step``
pulses as a function of the conductance before them), not on whole trajectories: cycle-to-cycle noise makes
a trajectory a random walk around the curve, but every step still starts from the state the device is
really in, so the one-step residuals are independent and the least-squares fit is not biased by the walk.
One level count is shared by both directions (one pulse moves the state by 1/levels either way), each
direction has its own A. A grid in (log levels, log A) is refined three times around each device's best.

Cycle-to-cycle noise is what the one-step residuals have beyond the read noise of the two reads they
compare, per pulse (a train of n pulses adds √n of it), in fractions of the window; only steps well inside
the window count (at its ends the device clips the noise).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Literal

import numpy as np

from .characterise import CharacterisationError, Measurements, Settings
from .devicemodel import LINEAR_A, DeviceFile, DeviceGroup, PooledFit, StuckDevice, curve, inverse_curve

#: Nonlinearities searched (A above the largest is reported as linear, inf).
A_GRID = np.geomspace(0.05, 50.0, 25)
A_LINEAR_ABOVE = 40.0
#: Devices whose window is below this fraction of the median window are stuck.
STUCK_FRACTION = 0.25


def _sse(x0: np.ndarray, x1: np.ndarray, ok: np.ndarray, step: float, levels: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Sum of squared one-step residuals, shape (D, nA, nL), for per-device grids ``a`` (D, nA), ``levels`` (D, nL)."""
    out = np.empty((x0.shape[0], a.shape[1], levels.shape[1]))
    for i in range(a.shape[1]):
        ai = a[:, i, None]
        p0 = inverse_curve(x0, ai)  # (D, T)
        p1 = np.clip(p0[:, None, :] + step / levels[:, :, None], 0.0, 1.0)
        pred = curve(p1, ai[:, :, None])
        out[:, i, :] = np.sum(np.where(ok[:, None, :], (x1[:, None, :] - pred) ** 2, 0.0), axis=2)
    return out


Train = tuple[np.ndarray, np.ndarray, np.ndarray]  # (x0, x1, ok): conductance before and after one pulse


def _fit_curves(pot: Train, dep: Train, step: float,
                max_levels: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-device (levels, a_pot, a_dep) minimising the one-step residuals of both directions."""
    d = pot[0].shape[0]
    grid_l = np.tile(np.geomspace(max(1.0, step / 2), max_levels, 40), (d, 1))
    grid_a = np.tile(np.append(A_GRID, LINEAR_A), (d, 1))
    s_pot, s_dep = _sse(*pot, step, grid_l, grid_a), _sse(*dep, step, grid_l, grid_a)
    total = s_pot.min(axis=1) + s_dep.min(axis=1)
    rows = np.arange(d)
    j = np.argmin(total, axis=1)
    levels = grid_l[rows, j]
    a_pot = grid_a[rows, np.argmin(s_pot[rows, :, j], axis=1)]
    a_dep = grid_a[rows, np.argmin(s_dep[rows, :, j], axis=1)]
    for width, points in ((0.25, 7), (0.06, 7), (0.015, 7)):
        offsets = np.linspace(-1.0, 1.0, points)
        gl = levels[:, None] * np.exp(width * offsets)
        best = []
        for a, data in ((a_pot, pot), (a_dep, dep)):
            # refine every device, "linear" ones from the top of the grid: a noisy coarse pick must not stick
            ga = np.clip(np.minimum(a, 60.0)[:, None] * np.exp(width * offsets), A_GRID[0], 60.0)
            s = _sse(*data, step, gl, ga)
            best.append((s, ga))
        total = best[0][0].min(axis=1) + best[1][0].min(axis=1)
        j = np.argmin(total, axis=1)
        levels = gl[rows, j]
        a_pot = best[0][1][rows, np.argmin(best[0][0][rows, :, j], axis=1)]
        a_dep = best[1][1][rows, np.argmin(best[1][0][rows, :, j], axis=1)]
    return levels, np.where(a_pot > A_LINEAR_ABOVE, math.inf, a_pot), np.where(a_dep > A_LINEAR_ABOVE, math.inf, a_dep)


def _predict(x0: np.ndarray, step: float, levels: np.ndarray, a: np.ndarray) -> np.ndarray:
    af = np.minimum(a, LINEAR_A)[:, None]
    return curve(np.clip(inverse_curve(x0, af) + step / levels[:, None], 0.0, 1.0), af)


def _median(values: np.ndarray) -> float:
    values = values[~np.isnan(values)]
    return float(np.median(values)) if values.size else math.nan


def _log_spread(values: np.ndarray) -> float | None:
    values = values[np.isfinite(values) & (values > 0)]
    return float(np.std(np.log(values))) if values.size > 1 else None


def fit_group(curves: np.ndarray, noise: np.ndarray, settings: Settings) -> dict[str, np.ndarray]:
    """Per-device fit of one conductance matrix from its curves (cycles, 2, points, *shape) and noise reads."""
    shape = curves.shape[3:]
    c, _, k1, *_ = curves.shape
    flat = curves.reshape(c, 2, k1, -1)
    tail = max(2, k1 // 8)
    g_min = np.median(flat[:, 0, -tail:, :], axis=(0, 1))
    g_max = np.median(flat[:, 1, -tail:, :], axis=(0, 1))
    window = g_max - g_min
    nz = noise.reshape(noise.shape[0], -1)
    mean = nz.mean(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        read_noise = np.where(np.abs(mean) > 0, nz.std(axis=0, ddof=1) / np.abs(mean), np.nan)
    stuck = window < STUCK_FRACTION * np.median(window)
    level = flat.mean(axis=(0, 1, 2))
    mid = 0.5 * (np.median(g_min[~stuck]) + np.median(g_max[~stuck])) if (~stuck).any() else 0.0
    stuck_code = np.where(stuck, np.where(level > mid, 1, -1), 0).astype(np.int8)

    d = flat.shape[-1]
    levels, a_pot, a_dep, c2c = (np.full(d, np.nan) for _ in range(4))
    work = np.flatnonzero(~stuck)
    if work.size:
        w = window[work]
        u = (flat[..., work] - g_min[work]) / w  # (C, 2, K+1, W)

        def transitions(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            x0 = np.moveaxis(x[:, :-1, :], -1, 0).reshape(work.size, -1)
            x1 = np.moveaxis(x[:, 1:, :], -1, 0).reshape(work.size, -1)
            ok = np.isfinite(x0) & np.isfinite(x1)
            return np.nan_to_num(np.clip(x0, 0, 1)), np.nan_to_num(x1), ok

        pot, dep = transitions(u[:, 1]), transitions(1.0 - u[:, 0])
        step = float(settings.step)
        lv, ap, ad = _fit_curves(pot, dep, step, 4.0 * settings.pulses)
        levels[work], a_pot[work], a_dep[work] = lv, ap, ad
        rn = np.nan_to_num(read_noise[work])
        sq, count = np.zeros(work.size), np.zeros(work.size)
        for (x0, x1, ok), a, sign in ((pot, ap, 1), (dep, ad, -1)):
            pred = _predict(x0, step, lv, a)
            inside = ok & (x0 > 0.05) & (x0 < 0.85) & (pred < 0.9)
            # read noise of the two reads compared, in window units (reads are relative to g)
            g0 = g_min[work, None] + w[:, None] * (x0 if sign > 0 else 1 - x0)
            g1 = g_min[work, None] + w[:, None] * (x1 if sign > 0 else 1 - x1)
            read_var = (rn[:, None] ** 2 / settings.reads) * (g0**2 + g1**2) / w[:, None] ** 2
            sq += np.sum(np.where(inside, (x1 - pred) ** 2 - read_var, 0.0), axis=1)
            count += inside.sum(axis=1)
        c2c[work] = np.sqrt(np.maximum(sq, 0.0) / np.maximum(count, 1) / step)

    out = {
        "g_min": g_min, "g_max": g_max, "levels": levels, "a_pot": a_pot, "a_dep": a_dep, "c2c": c2c,
        "read_noise": read_noise, "stuck": stuck_code, "level": level,
    }
    return {k: v.reshape(shape) for k, v in out.items()}


def drift_rates(drift: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Per-device relative conductance change per second: slope of g/g(0) over time (least squares)."""
    flat = drift.reshape(drift.shape[0], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = flat / flat[:1]
    t = times - times.mean()
    return (t @ (rel - rel.mean(axis=0))) / max(float(t @ t), 1e-30)


def fit(data: Measurements, settings: Settings, system: str = "") -> DeviceFile:
    """The device file of a complete set of measurements."""
    fits = {name: fit_group(data.curves[name], data.noise[name], settings) for name in data.curves}
    allv = {k: np.concatenate([f[k].ravel() for f in fits.values()]) for k in next(iter(fits.values()))}
    working = allv["stuck"] == 0
    if not working.any():
        raise CharacterisationError("characterise: every device is stuck (no device moved); nothing to fit")
    pooled_vals = {k: _median(allv[k][working]) for k in ("g_min", "g_max", "levels", "a_pot", "a_dep", "c2c",
                                                          "read_noise")}
    spread = {k: s for k in ("g_min", "g_max", "levels", "a_pot", "a_dep", "c2c", "read_noise")
              if (s := _log_spread(allv[k][working])) is not None}
    drift_per_s = None
    if data.drift and data.drift_times.size > 1:
        rates = np.concatenate([drift_rates(data.drift[n], data.drift_times)[fits[n]["stuck"].ravel() == 0]
                                for n in data.drift])
        drift_per_s = _median(rates)
    total = allv["stuck"].size
    pooled = PooledFit(
        g_min=max(0.0, pooled_vals["g_min"]), g_max=pooled_vals["g_max"], levels=pooled_vals["levels"],
        a_pot=pooled_vals["a_pot"], a_dep=pooled_vals["a_dep"], c2c=pooled_vals["c2c"],
        d2d=spread.get("g_max", 0.0), read_noise=max(0.0, pooled_vals["read_noise"]),
        stuck_min=float(np.sum(allv["stuck"] < 0) / total), stuck_max=float(np.sum(allv["stuck"] > 0) / total),
        drift_per_s=drift_per_s, spread=spread,
    )
    groups, stuck_list = {}, []
    for name, f in fits.items():
        arrays = _with_pooled(f, pooled)
        groups[name] = DeviceGroup(shape=list(f["stuck"].shape), **{k: arrays[k].tolist() for k in DeviceGroup.FIELDS})
        for idx in zip(*np.nonzero(f["stuck"]), strict=True):
            at: Literal["g_min", "g_max"] = "g_max" if f["stuck"][idx] > 0 else "g_min"
            stuck_list.append(StuckDevice(param=name, index=[int(i) for i in idx], at=at, g=float(f["level"][idx])))
    measured: dict[str, float | int | str] = {
        "cycles": settings.cycles, "pulses": settings.pulses, "step": settings.step, "reads": settings.reads,
        "noise_reads": settings.noise_reads, "pulses_per_device": data.pulses_fired,
        "elapsed_s": round(data.elapsed_s, 3), "saturated": bool(pooled.levels <= settings.pulses),
    }
    return DeviceFile(system=system, measured=measured, pooled=pooled, devices=groups, stuck=stuck_list)


def _with_pooled(f: Mapping[str, np.ndarray], pooled: PooledFit) -> dict[str, np.ndarray]:
    """Per-device values where measured; pooled ones for stuck devices (which hold their measured level)."""
    out = {k: np.array(f[k], dtype=np.float64) for k in DeviceGroup.FIELDS}
    stuck = f["stuck"] != 0
    for k in ("levels", "a_pot", "a_dep", "c2c"):
        out[k] = np.where(stuck | np.isnan(out[k]), getattr(pooled, k), out[k])
    out["read_noise"] = np.where(np.isfinite(out["read_noise"]), out["read_noise"], pooled.read_noise)
    level = np.asarray(f["level"])
    low, high = f["stuck"] < 0, f["stuck"] > 0
    high_min = np.minimum(pooled.g_min, 0.5 * level)
    out["g_min"] = np.where(low, np.maximum(level, 0.0), np.where(high, high_min, out["g_min"]))
    out["g_max"] = np.where(low, np.maximum(pooled.g_max, 2.0 * level), np.where(high, level, out["g_max"]))
    out["g_min"] = np.maximum(out["g_min"], 0.0)
    out["stuck"] = np.asarray(f["stuck"], dtype=np.float64)
    return out


__all__ = ["A_GRID", "STUCK_FRACTION", "drift_rates", "fit", "fit_group"]
