"""How close a measured update is to the true gradient: one helper shared by tests and benchmarks."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np


def flatten(arrays: Mapping[str, np.ndarray], names: list[str] | None = None) -> np.ndarray:
    """Concatenate parameter groups (in ``names`` order, default sorted) into one vector."""
    names = sorted(arrays) if names is None else names
    return np.concatenate([np.ravel(arrays[n]) for n in names])


def cosine_similarity(a: Mapping[str, np.ndarray], b: Mapping[str, np.ndarray]) -> float:
    """Cosine of the angle between two parameter-shaped updates."""
    names = sorted(b)
    va, vb = flatten(a, names), flatten(b, names)
    return float(va @ vb / (np.linalg.norm(va) * np.linalg.norm(vb)))


def relative_error(estimate: Mapping[str, np.ndarray], truth: Mapping[str, np.ndarray]) -> float:
    """‖estimate − truth‖ / ‖truth‖ over all parameter groups."""
    names = sorted(truth)
    ve, vt = flatten(estimate, names), flatten(truth, names)
    return float(np.linalg.norm(ve - vt) / np.linalg.norm(vt))
