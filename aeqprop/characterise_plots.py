"""Plots of a characterisation: measured pulse trains with the fitted model, and histograms of the spread."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .characterise import Measurements, Settings
from .devicemodel import DeviceFile, step_response


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def curves(data: Measurements, settings: Settings, devices: DeviceFile, out: Path, per_group: int = 3) -> Path:
    """Conductance vs pulse number (every cycle, both directions) for a few working devices, with the fit."""
    plt = _pyplot()
    names = sorted(data.curves)
    fig, axes = plt.subplots(len(names), per_group, figsize=(3.2 * per_group, 2.6 * len(names)),
                             squeeze=False, constrained_layout=True)
    pulses = np.arange(settings.points) * settings.step
    for row, name in enumerate(names):
        group = devices.devices[name]
        stuck = group.array("stuck").ravel()
        flat = data.curves[name].reshape(*data.curves[name].shape[:3], -1)
        chosen = np.flatnonzero(stuck == 0)[:per_group]
        for col in range(per_group):
            ax = axes[row, col]
            if col >= chosen.size:
                ax.axis("off")
                continue
            d = chosen[col]
            for c in range(flat.shape[0]):
                x = np.concatenate([pulses, pulses[-1] + pulses])
                ax.plot(x, np.concatenate([flat[c, 0, :, d], flat[c, 1, :, d]]), ".", ms=3, alpha=0.6,
                        label=f"cycle {c + 1}")
            p = {k: group.array(k).ravel()[d] for k in ("g_min", "g_max", "levels", "a_pot", "a_dep")}
            w = p["g_max"] - p["g_min"]
            fit_dep = p["g_min"] + w * step_response(np.ones_like(pulses, dtype=float), -pulses, p["levels"],
                                                     p["a_pot"], p["a_dep"])
            fit_pot = p["g_min"] + w * step_response(np.zeros_like(pulses, dtype=float), pulses, p["levels"],
                                                     p["a_pot"], p["a_dep"])
            ax.plot(np.concatenate([pulses, pulses[-1] + pulses]), np.concatenate([fit_dep, fit_pot]), "k-", lw=1,
                    label="fit")
            idx = np.unravel_index(d, tuple(group.shape))
            ax.set_title(f"{name}{list(map(int, idx))}: L={p['levels']:.0f}, A={p['a_pot']:.2g}/{p['a_dep']:.2g}",
                         fontsize=8)
            ax.set(xlabel="pulse (depression, then potentiation)", ylabel="g (S)")
            ax.grid(alpha=0.3)
            if row == 0 and col == 0:
                ax.legend(fontsize=6)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def spread(devices: DeviceFile, out: Path) -> Path:
    """Histograms of every fitted per-device parameter over working devices, the pooled value marked."""
    plt = _pyplot()
    keys = ("g_min", "g_max", "levels", "a_pot", "a_dep", "c2c", "read_noise")
    fig, axes = plt.subplots(2, 4, figsize=(13, 5.5), constrained_layout=True)
    for ax, key in zip(axes.ravel(), keys, strict=False):
        values = np.concatenate([
            g.array(key).ravel()[g.array("stuck").ravel() == 0] for g in devices.devices.values()
        ])
        values = values[np.isfinite(values)]
        if values.size:
            ax.hist(values, bins=30, color="C0", alpha=0.8)
        pooled = getattr(devices.pooled, key)
        if np.isfinite(pooled):
            ax.axvline(pooled, color="k", ls="--", lw=1, label="pooled")
        ax.set_title(key + (" (all linear)" if not values.size else ""), fontsize=9)
        ax.grid(alpha=0.3)
    last = axes.ravel()[-1]
    last.axis("off")
    p = devices.pooled
    last.text(0, 0.5, f"stuck: {len(devices.stuck)} devices\n(at g_min {p.stuck_min:.1%}, at g_max {p.stuck_max:.1%})"
              f"\nd2d (std log g_max) {p.d2d:.3f}", fontsize=9, va="center")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


__all__ = ["curves", "spread"]
