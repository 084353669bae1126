"""Time and energy per training sample, from systems that report what their work cost (optional ``cost()``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .system import PhysicalSystem


def read_cost(system: PhysicalSystem) -> dict[str, float] | None:
    """The system's cumulative cost counters, or ``None`` when it cannot tell (most systems)."""
    hook = getattr(system, "cost", None)
    return {k: float(v) for k, v in hook().items()} if callable(hook) else None


def _per_sample_key(key: str) -> str:
    """``time_s`` → ``time_per_sample_s``, ``relax_energy_j`` → ``relax_energy_per_sample_j``."""
    stem, _, unit = key.rpartition("_")
    return f"{stem}_per_sample_{unit}" if stem else f"{key}_per_sample"


def per_sample(before: Mapping[str, float] | None, after: Mapping[str, float] | None, samples: int) -> dict[str, float]:
    """Each counter's increase over ``samples`` training samples, per sample."""
    if before is None or after is None or samples <= 0:
        return {}
    return {_per_sample_key(k): (after[k] - before.get(k, 0.0)) / samples for k in after}


def summary_costs(history: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Per-sample figures averaged over the epochs that report them (epochs have equal sample counts)."""
    keys = sorted({k for h in history for k in h if "_per_sample_" in k})
    out = {}
    for k in keys:
        values = [float(h[k]) for h in history if k in h]
        out[k] = sum(values) / len(values)
    return out


__all__ = ["per_sample", "read_cost", "summary_costs"]
