"""Figures of run directories (matplotlib, headless): learning curves, cost counters and device views.

Each ``*_figure`` function returns a matplotlib Figure so the same drawing goes to a PNG file
(:func:`save`, ``aeqprop plot``) or into an HTML report (:mod:`aeqprop.report`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

from .runview import COUNTERS, Device


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True)


def save(fig: Any, out: Path | IO[bytes], fmt: str = "png", dpi: int = 110) -> None:
    """Write the figure and free it."""
    fig.savefig(out, format=fmt, dpi=dpi)
    _plt().close(fig)


def png_bytes(fig: Any, dpi: int = 110) -> bytes:
    buf = io.BytesIO()
    save(fig, buf, "png", dpi)
    return buf.getvalue()


def learning_curves_figure(runs: Sequence[tuple[str, list[dict[str, Any]]]], title: str = "") -> Any:
    """Error (%) and train loss per epoch; several runs overlaid, one colour each (test solid, train dashed)."""
    plt = _plt()
    rows = -(-len(runs) // 3) if len(runs) > 1 else 0
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(10, 3.8 + 0.25 * rows), layout="constrained")
    for i, (name, records) in enumerate(runs):
        colour = f"C{i % 10}"
        epochs = [r["epoch"] for r in records]
        ax_err.plot(epochs, [100 * (1 - r["test_accuracy"]) for r in records], "s-", color=colour, ms=4)
        ax_err.plot(epochs, [100 * (1 - r["train_accuracy"]) for r in records], "o--", color=colour, ms=3, alpha=0.7)
        ax_loss.plot(epochs, [r["train_loss"] for r in records], "o-", color=colour, label=name, ms=3)
    ax_err.plot([], [], "s-", color="0.3", label="test")
    ax_err.plot([], [], "o--", color="0.3", label="train")
    ax_err.set(xlabel="epoch", ylabel="error (%)", yscale="log")
    for ax in (ax_err, ax_loss):
        ax.xaxis.set_major_locator(_integer_ticks())
    ax_err.grid(alpha=0.3, which="both")
    ax_err.legend(fontsize="small")
    ax_loss.set(xlabel="epoch", ylabel="train loss (½‖V_out − y‖²)", yscale="log")
    ax_loss.grid(alpha=0.3, which="both")
    if len(runs) > 1:  # one colour per run, named once below the panels
        fig.legend(*ax_loss.get_legend_handles_labels(), loc="outside lower center", fontsize="small",
                   ncols=min(3, len(runs)), frameon=False)
    if title:
        fig.suptitle(title)
    return fig


def learning_curve(records: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Write a two-panel PNG: test/train error (%) and train loss per epoch."""
    save(learning_curves_figure([(title, records)], title), out, dpi=120)
    return out


def counters_figure(runs: Sequence[tuple[str, dict[str, list[float | None]]]]) -> Any | None:
    """One panel per cost counter (reads, pulses, sweeps, homeostasis iterations, samples/s) per epoch."""
    keys = [k for k in COUNTERS if any(k in c for _, c in runs)]
    if not keys:
        return None
    plt = _plt()
    cols = min(3, len(keys))
    rows = -(-len(keys) // cols)
    legend_rows = -(-len(runs) // 3) if len(runs) > 1 else 0
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.8 * rows + 0.25 * legend_rows), layout="constrained",
                             squeeze=False)
    for ax, key in zip(axes.ravel(), keys):
        for i, (name, counters) in enumerate(runs):
            if key in counters:
                values = [np.nan if v is None else v for v in counters[key]]
                ax.plot(range(1, len(values) + 1), values, "o-", color=f"C{i % 10}", ms=3, label=name)
        ax.set(xlabel="epoch", title=COUNTERS[key])
        ax.xaxis.set_major_locator(_integer_ticks())
        ax.title.set_fontsize("medium")
        ax.grid(alpha=0.3)
    for ax in axes.ravel()[len(keys):]:
        ax.set_visible(False)
    if len(runs) > 1:
        fig.legend(*axes.ravel()[0].get_legend_handles_labels(), loc="outside lower center", fontsize="small",
                   ncols=min(3, len(runs)), frameon=False)
    return fig


def device_histograms_figure(devices: Sequence[Device], margin: float = 0.01) -> Any | None:
    """Per-group histograms of the checkpoint's values, the window's edges marked, fractions at them."""
    if not devices:
        return None
    plt = _plt()
    cols = min(3, len(devices))
    rows = -(-len(devices) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 2.7 * rows), constrained_layout=True, squeeze=False)
    for ax, dev in zip(axes.ravel(), devices):
        ax.hist(dev.values.ravel(), bins=50, color="C0" if dev.role == "weight" else "C1")
        low, high = dev.at_edges(margin)
        title = f"{dev.name} (layer {dev.layer}, {dev.role})"
        if not np.isnan(low):
            for edge in (dev.low, dev.high):
                ax.axvline(edge, color="C3", lw=1, ls="--")
            title += f"\nat edges: {100 * low:.1f} % low, {100 * high:.1f} % high"
        ax.set_title(title, fontsize="small")
        ax.set_xlabel(dev.unit or "value")
        ax.set_yscale("log")
    for ax in axes.ravel()[len(devices):]:
        ax.set_visible(False)
    return fig


def device_maps_figure(devices: Sequence[Device]) -> Any | None:
    """Each weight matrix as an image (colour scale = the device window when known)."""
    mats = [d for d in devices if d.values.ndim == 2]
    if not mats:
        return None
    plt = _plt()
    cols = min(3, len(mats))
    rows = -(-len(mats) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.3 * rows), constrained_layout=True, squeeze=False)
    for ax, dev in zip(axes.ravel(), mats):
        image = ax.imshow(dev.values, aspect="auto", interpolation="nearest", cmap="viridis",
                          vmin=dev.low, vmax=dev.high)
        ax.set_title(f"{dev.name} {dev.values.shape[0]}×{dev.values.shape[1]}", fontsize="small")
        fig.colorbar(image, ax=ax, label=dev.unit or None)
    for ax in axes.ravel()[len(mats):]:
        ax.set_visible(False)
    return fig
