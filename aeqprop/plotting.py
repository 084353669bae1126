"""Learning-curve plots of a run directory (matplotlib, headless)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def learning_curve(records: list[dict[str, Any]], out: Path, title: str = "") -> Path:
    """Write a two-panel PNG: test/train error (%) and train loss per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in records]
    fig, (ax_err, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.5), constrained_layout=True)
    ax_err.plot(epochs, [100 * (1 - r["train_accuracy"]) for r in records], "o-", label="train")
    ax_err.plot(epochs, [100 * (1 - r["test_accuracy"]) for r in records], "s-", label="test")
    ax_err.set(xlabel="epoch", ylabel="error (%)", yscale="log")
    ax_err.legend()
    ax_err.grid(alpha=0.3, which="both")
    ax_loss.plot(epochs, [r["train_loss"] for r in records], "o-", color="C2")
    ax_loss.set(xlabel="epoch", ylabel="train loss (½‖V_out − y‖²)", yscale="log")
    ax_loss.grid(alpha=0.3, which="both")
    if title:
        fig.suptitle(title)
    fig.savefig(out, dpi=120)
    plt.close(fig)
    return out
