"""EP's gradient checked on the chip itself: the true gradient by the hardware's own means, no oracle.

For a sampled subset of parameters, one at a time: program +δ, measure the loss over a fixed batch (free
relaxation, outputs averaged over ``reads``, ``repeats`` times), program −2δ, measure again, program +δ back.
The step actually taken is measured too (``param_reads`` reads of the parameter at +δ and at −δ), since a
pulsed device takes what it takes; a parameter that does not move measurably (a stuck device) is left out
and listed. The derivative is the difference of the mean losses over the measured
step; its standard error comes from the scatter of the repeated loss measurements (the read noise) and of
the parameter reads.

Each EP estimator is then compared with it over the subset: the cosine and the relative error of the mean
of ``repeats`` EP estimates, with confidence intervals from a parametric bootstrap that redraws the measured
gradient within its standard errors and resamples the EP estimates. Noise in the reference inflates ‖g‖² and
‖e − g‖² by its energy Σ stderr² on average, which lowers a cosine and raises a relative error; both figures
remove it, and the interval is the *basic* bootstrap one (the bootstrap's spread reflected about the
point), so an oracle's figure for the same estimates falls inside it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .estimators import estimate_gradient
from .fidelity import parse_estimator
from .system import AeqpropError, PhysicalSystem, SystemSpec

Entry = tuple[str, tuple[int, ...]]


class GradientCheckError(AeqpropError):
    """The hardware gradient cannot be measured as asked (a parameter did not move, say)."""


def sample_entries(spec: SystemSpec, count: int, rng: np.random.Generator) -> list[Entry]:
    """``count`` distinct parameter entries drawn uniformly over every group (sorted by name)."""
    names = sorted(spec.params)
    sizes = np.array([int(np.prod(spec.params[n].shape)) for n in names])
    total = int(sizes.sum())
    picks = np.sort(rng.choice(total, size=min(count, total), replace=False))
    starts = np.concatenate([[0], np.cumsum(sizes)])
    out = []
    for flat in picks:
        g = int(np.searchsorted(starts, flat, side="right") - 1)
        idx = np.unravel_index(int(flat - starts[g]), spec.params[names[g]].shape)
        out.append((names[g], tuple(int(i) for i in idx)))
    return out


def batch_loss(system: PhysicalSystem, x: np.ndarray, y: np.ndarray, reads: int = 1) -> float:
    """Loss ½‖outputs − y‖², mean over the batch, at the free equilibrium (as training defines it)."""
    system.clamp(x)
    system.nudge(0.0)
    system.relax()
    out = system.read_outputs(reads)
    return float(0.5 * np.mean(np.sum((out - y) ** 2, axis=1)))


def default_steps(system: PhysicalSystem, fraction: float) -> dict[str, float]:
    """δ per group: ``fraction`` of the window where the group has one, else of its RMS value."""
    values = system.read_params()
    steps = {}
    for name, spec in system.spec.params.items():
        lo, hi = spec.bounds
        if lo is not None and hi is not None:
            steps[name] = fraction * (hi - lo)
        else:
            rms = float(np.sqrt(np.mean(np.square(values[name])))) if name in values else 0.0
            steps[name] = fraction * (rms if rms > 0 else 1.0)
    return steps


@dataclass(frozen=True)
class MeasuredGradient:
    """dL/dθ of ``entries`` measured by programming, with standard errors and what it cost."""

    entries: list[Entry]
    gradient: np.ndarray
    stderr: np.ndarray
    step: np.ndarray  # θ+ − θ− as measured
    programs: int
    relaxations: int
    dof: int = 1_000_000  # degrees of freedom of the standard errors (estimated from repeated measurements)
    skipped: tuple[Entry, ...] = ()  # entries that did not move (stuck devices): left out

    @property
    def snr(self) -> float:
        """‖g‖ over the RMS of its noise: below ~3 the figures below are dominated by the measurement's noise."""
        noise = float(np.sum(self.stderr**2))
        return float(np.sqrt(max(float(self.gradient @ self.gradient) - noise, 0.0) / max(noise, 1e-300)))


def measure_gradient(
    system: PhysicalSystem, x: np.ndarray, y: np.ndarray, entries: Sequence[Entry], steps: Mapping[str, float],
    reads: int = 1, repeats: int = 4, param_reads: int = 4,
) -> MeasuredGradient:
    """Central differences of the measured loss by program +δ / measure / program −2δ / measure / +δ back."""
    if repeats < 2 or param_reads < 1:
        raise GradientCheckError("the hardware gradient needs repeats >= 2 (for its error) and param_reads >= 1")
    shapes = {n: p.shape for n, p in system.spec.params.items()}

    def read(name: str, idx: tuple[int, ...]) -> tuple[float, float]:
        values = np.array([system.read_params()[name][idx] for _ in range(param_reads)], dtype=np.float64)
        sd = float(values.std(ddof=1)) / np.sqrt(param_reads) if param_reads > 1 else 0.0
        return float(values.mean()), sd

    def losses() -> np.ndarray:
        return np.array([batch_loss(system, x, y, reads) for _ in range(repeats)])

    grads, errs, taken, kept, skipped = [], [], [], [], []
    for name, idx in entries:
        one = np.zeros(shapes[name])
        one[idx] = steps[name]
        system.program({name: one})
        up, up_sd = read(name, idx)
        l_up = losses()
        system.program({name: -2.0 * one})
        down, down_sd = read(name, idx)
        l_down = losses()
        system.program({name: one})
        d = up - down
        if abs(d) <= 3 * np.hypot(up_sd, down_sd) or d == 0 or abs(d) < 0.1 * abs(2 * steps[name]):
            skipped.append((name, idx))  # a stuck device, or a step below one pulse
            continue
        g = (l_up.mean() - l_down.mean()) / d
        var = (l_up.var(ddof=1) + l_down.var(ddof=1)) / repeats / d**2 + (g * np.hypot(up_sd, down_sd) / d) ** 2
        grads.append(g)
        errs.append(np.sqrt(var))
        taken.append(d)
        kept.append((name, idx))
    if len(kept) < max(2, len(entries) // 2):
        where = ", ".join(f"{n}{list(i)}" for n, i in skipped[:5])
        raise GradientCheckError(
            f"{len(skipped)} of {len(entries)} sampled parameters did not move measurably ({where}): a step of "
            "±delta is below one pulse or within the read noise; raise --delta or --param-reads"
        )
    n = len(entries)
    return MeasuredGradient(kept, np.array(grads), np.array(errs), np.array(taken), 3 * n, 2 * repeats * n,
                            dof=2 * (repeats - 1), skipped=tuple(skipped))


@dataclass(frozen=True)
class ChipFidelityPoint:
    """One estimator at one (β, reads) against the measured gradient, with 95 % intervals."""

    estimator: str
    beta: float
    reads: int
    repeats: int
    parameters: int
    cosine: float
    cosine_low: float
    cosine_high: float
    relative_error: float
    relative_error_low: float
    relative_error_high: float
    oracle_cosine: float | None = None
    oracle_relative_error: float | None = None

    def as_dict(self) -> dict[str, float | int | str | None]:
        return asdict(self)


def _cos(e: np.ndarray, g: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """Cosine of ``e`` with the true gradient, from ``g`` = truth + noise of total variance ``noise``."""
    norm_g = np.sqrt(np.maximum(np.sum(g * g, axis=-1) - noise, 1e-300))
    return np.clip(np.sum(e * g, axis=-1) / (np.linalg.norm(e, axis=-1) * norm_g), -1.0, 1.0)


def _rel(e: np.ndarray, g: np.ndarray, noise: float = 0.0) -> np.ndarray:
    """‖e − truth‖/‖truth‖ from ``g`` = truth + noise (‖e − g‖² and ‖g‖² each overstate theirs by ``noise``)."""
    num = np.maximum(np.sum((e - g) ** 2, axis=-1) - noise, 0.0)
    return np.sqrt(num / np.maximum(np.sum(g * g, axis=-1) - noise, 1e-300))


def compare(
    estimates: np.ndarray, measured: MeasuredGradient, rng: np.random.Generator, draws: int = 4000,
    level: float = 0.95,
) -> tuple[tuple[float, float, float], tuple[float, float, float]]:
    """(cosine, low, high) and (relative error, low, high) of the mean of ``estimates`` (repeats, n).

    The point figures remove the measured gradient's noise energy Σ stderr² from the norms it inflates; the
    interval is the basic bootstrap one: redraw the measured gradient around itself within its errors
    (Student t, since they are estimated from few repeats) and
    the EP estimates with replacement, and reflect the spread of the corrected figure about the point.
    """
    mean = estimates.mean(axis=0)
    g, se = measured.gradient, measured.stderr
    noise = float(np.sum(se**2))
    boot_g = g + se * rng.standard_t(measured.dof, (draws, g.size))  # t: the errors are themselves estimates
    rows = rng.integers(0, estimates.shape[0], size=(draws, estimates.shape[0]))
    boot_e = estimates[rows].mean(axis=1)
    out = []
    for f in (_cos, _rel):
        point = float(f(mean, g, noise))
        shift = f(boot_e, boot_g, noise) - f(mean, g)  # bootstrap world: g is the truth
        q_lo, q_hi = np.quantile(shift, [(1 - level) / 2, (1 + level) / 2])
        out.append((point, float(point - q_hi), float(point - q_lo)))
    (c, c_lo, c_hi), r = out
    return (c, max(-1.0, c_lo), min(1.0, c_hi)), (r[0], max(0.0, r[1]), r[2])


def check(
    system: PhysicalSystem, x: np.ndarray, y: np.ndarray, entries: Sequence[Entry],
    measure: Callable[[], MeasuredGradient], estimators: Sequence[str], betas: Sequence[float],
    reads: Sequence[int], repeats: int, rng: np.random.Generator,
    oracle: Callable[[np.ndarray, np.ndarray], Mapping[str, np.ndarray]] | None = None,
) -> tuple[list[ChipFidelityPoint], MeasuredGradient]:
    """Every estimator × β × reads on ``entries`` against the gradient ``measure()`` returns.

    The EP estimates (and a simulator's oracle) are taken first, at the parameters as found; the measurement
    then steps parameters away and back, and the caller restores the system after it.
    """
    if repeats < 2:
        raise GradientCheckError("--repeats must be at least 2 for intervals over the EP estimates")
    full = oracle(x, y) if oracle is not None else None
    runs = []
    for label in estimators:
        name, n_points = parse_estimator(label)
        for beta in betas:
            for r in reads:
                rows = []
                for _ in range(repeats):
                    est = estimate_gradient(system, x, y, name, beta, r, rng, n_points)  # type: ignore[arg-type]
                    rows.append([est.gradient[n][i] for n, i in entries])
                runs.append((label, float(beta), r, np.array(rows, dtype=np.float64)))
    measured = measure()
    columns = [list(entries).index(e) for e in measured.entries]  # stuck devices are left out
    truth = None if full is None else np.array([full[n][i] for n, i in measured.entries])
    points = []
    for label, beta, r, all_estimates in runs:
        estimates = all_estimates[:, columns]
        (c, c_lo, c_hi), (e, e_lo, e_hi) = compare(estimates, measured, rng)
        oc = oe = None
        if truth is not None:
            mean = estimates.mean(axis=0)
            oc, oe = float(_cos(mean, truth)), float(_rel(mean, truth))
        points.append(ChipFidelityPoint(label, beta, r, repeats, len(measured.entries), c, c_lo, c_hi, e, e_lo, e_hi,
                                        oc, oe))
    return points, measured


def format_table(points: Sequence[ChipFidelityPoint]) -> str:
    oracle = any(p.oracle_cosine is not None for p in points)
    head = (f"{'estimator':<12} {'beta':>7} {'reads':>5} {'cosine [95% CI]':>26} {'rel.error [95% CI]':>29}"
            + (f" {'oracle cos':>10} {'oracle err':>10}" if oracle else ""))
    lines = [head, "-" * len(head)]
    for p in points:
        line = (f"{p.estimator:<12} {p.beta:>7.4g} {p.reads:>5d} {p.cosine:>8.4f} [{p.cosine_low:>7.4f}, "
                f"{p.cosine_high:>7.4f}] {p.relative_error:>9.3e} [{p.relative_error_low:>8.2e}, "
                f"{p.relative_error_high:>8.2e}]")
        if oracle:
            line += f" {p.oracle_cosine:>10.4f} {p.oracle_relative_error:>10.3e}"
        lines.append(line)
    return "\n".join(lines)


__all__ = [
    "ChipFidelityPoint", "Entry", "GradientCheckError", "MeasuredGradient", "batch_loss", "check", "compare",
    "default_steps", "format_table", "measure_gradient", "sample_entries",
]
