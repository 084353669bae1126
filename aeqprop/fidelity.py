"""How close a measured update is to the true gradient: the harness shared by tests, benchmarks and the CLI.

The true gradient always comes from the caller (a simulator's oracle, supplied by a test, a benchmark or the
composition root): this module sees systems only through the contract.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .estimators import ESTIMATORS, estimate_gradient
from .system import PhysicalSystem


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


@dataclass(frozen=True)
class FidelityPoint:
    """How one estimator at one (β, reads) setting compares with the true gradient over repeated batches.

    ``bias`` is ‖mean estimate − truth‖/‖truth‖ (what averaging cannot remove); ``spread`` is the RMS
    distance of single estimates from their mean over ‖truth‖ (what read noise adds, falling as 1/√reads);
    ``relative_error`` and ``cosine`` are means over single estimates, as one training step sees them.
    """

    estimator: str
    beta: float
    reads: int
    repeats: int
    cosine: float
    relative_error: float
    bias: float
    spread: float
    relaxations: int

    def as_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def estimator_label(estimator: str, points: int) -> str:
    """``cauchy-6`` for a 6-point Cauchy estimator, the plain name otherwise."""
    return f"{estimator}-{points}" if estimator == "cauchy" else estimator


def parse_estimator(label: str) -> tuple[str, int]:
    """Inverse of :func:`estimator_label`: ``"cauchy-6"`` → ("cauchy", 6); others keep 4 points."""
    if label.startswith("cauchy-"):
        return "cauchy", int(label.split("-", 1)[1])
    if label not in ESTIMATORS:
        raise ValueError(f"unknown estimator {label!r}; allowed: {', '.join(ESTIMATORS)} (cauchy-N for N points)")
    return label, 4


def measure(
    system: PhysicalSystem,
    x: np.ndarray,
    y: np.ndarray,
    truth: Mapping[str, np.ndarray],
    estimator: str,
    beta: float,
    reads: int = 1,
    repeats: int = 1,
    rng: np.random.Generator | None = None,
) -> FidelityPoint:
    """Estimate the gradient of (x, y) ``repeats`` times through the contract and compare with ``truth``.

    ``truth`` comes from the caller (a simulator's oracle): the harness itself never looks behind the
    contract. ``estimator`` is a label of :func:`parse_estimator`.
    """
    name, points = parse_estimator(estimator)
    names = sorted(truth)
    vt = flatten(truth, names)
    norm = float(np.linalg.norm(vt))
    rng = rng if rng is not None else np.random.default_rng(0)
    samples, relaxations = [], 0
    for _ in range(repeats):
        est = estimate_gradient(system, x, y, name, beta, reads, rng, points)  # type: ignore[arg-type]
        samples.append(flatten(est.gradient, names))
        relaxations = est.relaxations
    stack = np.stack(samples)
    mean = stack.mean(axis=0)
    cosines = stack @ vt / (np.linalg.norm(stack, axis=1) * norm)
    return FidelityPoint(
        estimator=estimator, beta=float(beta), reads=reads, repeats=repeats,
        cosine=float(cosines.mean()),
        relative_error=float(np.mean(np.linalg.norm(stack - vt, axis=1)) / norm),
        bias=float(np.linalg.norm(mean - vt) / norm),
        spread=float(np.sqrt(np.mean(np.sum((stack - mean) ** 2, axis=1))) / norm),
        relaxations=relaxations,
    )


def sweep(
    system: PhysicalSystem,
    x: np.ndarray,
    y: np.ndarray,
    truth: Mapping[str, np.ndarray],
    estimators: Sequence[str],
    betas: Sequence[float],
    reads: Sequence[int] = (1,),
    repeats: int = 1,
    seed: int = 0,
) -> list[FidelityPoint]:
    """:func:`measure` over every estimator × β × reads (estimators a system cannot run are the caller's
    to leave out: a missing capability raises :class:`~aeqprop.system.CapabilityError`)."""
    rng = np.random.default_rng(seed)
    return [
        measure(system, x, y, truth, est, beta, r, repeats, rng)
        for est in estimators for beta in betas for r in reads
    ]


def bias_orders(points: Sequence[FidelityPoint]) -> dict[str, float]:
    """Empirical order p of each estimator's bias, bias ∝ β^p: least-squares slope of log bias on log β.

    Uses the points with the fewest-reads setting of each estimator; needs two or more distinct β.
    """
    orders: dict[str, float] = {}
    for label in dict.fromkeys(p.estimator for p in points):
        rows = [p for p in points if p.estimator == label]
        fewest = min(p.reads for p in rows)
        rows = [p for p in rows if p.reads == fewest and p.bias > 0]
        if len({p.beta for p in rows}) < 2:
            continue
        lb = np.log([abs(p.beta) for p in rows])
        le = np.log([p.bias for p in rows])
        orders[label] = float(np.polyfit(lb, le, 1)[0])
    return orders


def format_table(points: Sequence[FidelityPoint]) -> str:
    """A plain-text table, one line per point."""
    head = (f"{'estimator':<12} {'beta':>8} {'reads':>5} {'cosine':>9} {'rel.error':>10} {'bias':>10} "
            f"{'spread':>10} {'relax':>5}")
    lines = [head, "-" * len(head)]
    for p in points:
        lines.append(
            f"{p.estimator:<12} {p.beta:>8.4g} {p.reads:>5d} {p.cosine:>9.6f} {p.relative_error:>10.3e} "
            f"{p.bias:>10.3e} {p.spread:>10.3e} {p.relaxations:>5d}"
        )
    return "\n".join(lines)


__all__ = [
    "FidelityPoint", "bias_orders", "cosine_similarity", "estimator_label", "flatten", "format_table",
    "measure", "parse_estimator", "relative_error", "sweep",
]
