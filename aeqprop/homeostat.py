"""The homeostat: feedback on the *measured* parameters that holds each one at its set point (Aeqprop phase 2).

Everything here is learned from measurements of the plant (knob moves and parameter read-backs), never from a
formula of the system:

- the collective response of a group, ⟨Δθ, Δu⟩ / ⟨Δu, Δu⟩ along the correction just made. For a floating
  parameter coupled by ‖u − θ‖²/(2ε) to an energy whose free energy F has curvature ∇²F, θ responds to u by
  (I + ε∇²F)⁻¹; with ∇²F ≤ 0 this is ≥ 1 and grows without bound as ε·λ_max(−∇²F) → 1, where the held point
  stops being stable. The rule (:mod:`aeqprop.agnostic`) turns it into ε·λ = 1 − 1/response to keep ε inside
  its stability region;
- each knob's own progress: a knob whose parameter responds weakly gets a larger multiplier (from its own
  secant); one whose parameter does not respond at all for ``stop_after`` iterations rests on a physical stop
  (or is disconnected): it is reported and no longer pushed, instead of winding up forever;
- the read-back noise floor: two averaged reads of an untouched system differ only by noise, and the
  tolerance of each group is raised to where pure noise would no longer pass for an error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .system import Arrays, HomeostaticSystem, NotSettled, PhysicalSystem

#: Group gains are the inverse of the measured collective response, clipped to [1/GROUP_CLIP, GROUP_CLIP].
GROUP_CLIP = 256.0
#: Key of the joint (all groups at once) response in :meth:`Homeostat.probe`'s result.
JOINT = "(joint)"
#: A knob whose parameter moved by less than this fraction of the knob's move made no measurable progress.
DEAD = 1.0 / 16.0


class NotHeld(NotSettled):
    """Homeostasis could not bring every responsive parameter back within tolerance of its set point.

    ``groups`` counts the knobs still out of tolerance per group (the rule uses it to lower those groups' ε).
    """

    def __init__(self, message: str, groups: dict[str, int] | None = None) -> None:
        super().__init__(message)
        self.groups = dict(groups or {})


@dataclass(frozen=True)
class HoldReport:
    """One homeostasis episode: knob adjustments (each followed by a relaxation), sweeps, final worst error.

    ``response``: the largest collective response measured per group during the episode (absent when the
    group needed no correction); ``stopped``: knobs per group left alone because their parameter rests on a stop.
    """

    iterations: int
    sweeps: int
    max_error: float
    response: dict[str, float] = field(default_factory=dict)
    stopped: dict[str, int] = field(default_factory=dict)


def noise_z(n: int) -> float:
    """Multiple of σ that the largest of ``n`` Gaussian read errors rarely exceeds (√(2 ln 2n) + 1)."""
    return math.sqrt(2.0 * math.log(2.0 * max(n, 1))) + 1.0


def _excess(moved: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """The next probe direction: the response in excess of the knob move, (R − I)δ, on responding knobs only.

    The response R = (I + ε∇²F)⁻¹ has its bulk at 1 and its top at 1/(1 − ελ); power iteration on R itself
    gains only that ratio (≤ 2 inside the margin) per step and from a random start in a group of 10⁴ knobs needs
    ~15 steps. On R − I the bulk is 0. Knobs whose parameter did not move (resting on a stop: R = 0 there, so
    R − I = −1) are left out, or the iteration would lock onto them.
    """
    excess = moved - delta
    excess[np.abs(moved) < DEAD * np.abs(delta)] = 0.0
    return excess


class Homeostat:
    """Holds floating parameters at their set points by feedback on the measured θ, knob by knob.

    Each iteration moves every knob by ``gain · (θ_set − θ)``, relaxes and reads θ again (``reads`` averaged
    read-backs). With ``adaptive`` the gain of a knob is a group gain (inverse of the collective response) times
    a knob multiplier (≥ 1, at most ``max_gain``) learned from that knob's own progress. Gains persist between
    batches: they are the controller's model of the plant.
    """

    def __init__(
        self,
        tolerance: float = 1e-6,
        max_iterations: int = 50,
        adaptive: bool = True,
        max_gain: float = 1024.0,
        reads: int = 1,
        stop_after: int = 3,
    ) -> None:
        if tolerance <= 0 or max_iterations < 0 or max_gain < 1 or reads < 1 or stop_after < 1:
            raise ValueError(
                "homeostasis needs tolerance > 0, max_iterations >= 0, max_gain >= 1, reads >= 1, stop_after >= 1"
            )
        self.tolerance = tolerance
        self.max_iterations = max_iterations
        self.adaptive = adaptive
        self.max_gain = max_gain
        self.reads = reads
        self.stop_after = stop_after
        self.group_gains: dict[str, float] = {}
        self.knob_gains: Arrays = {}
        self.dead_counts: dict[str, np.ndarray] = {}
        #: σ of one averaged read-back per group (None until measured; 0 for a noiseless system).
        self.noise: dict[str, float] | None = None

    # --- measurements -------------------------------------------------------------------------------------
    def read(self, system: PhysicalSystem) -> Arrays:
        """θ as measured, averaged over ``reads`` read-backs (the contract's ``read_params(reads=N)``)."""
        if self.reads == 1:
            return system.read_params()
        return system.read_params(reads=self.reads)

    def measure_noise(self, system: PhysicalSystem) -> dict[str, float]:
        """σ of an averaged read per group from pairs of reads of the untouched system: rms(r₁ − r₂)/√2.

        Enough pairs are taken for ≥ 64 differences in the smallest group (at most 16 pairs): a bias vector of
        six entries read twice would give a σ wrong by ±30 %.
        """
        first = self.read(system)
        smallest = min((v.size for v in first.values() if v.size), default=1)
        pairs = min(16, max(1, math.ceil(64 / smallest)))
        sums = {k: 0.0 for k in first}
        for p in range(pairs):
            a = first if p == 0 else self.read(system)
            b = self.read(system)
            for k in first:
                sums[k] += float(np.sum((a[k] - b[k]) ** 2))
        self.noise = {
            k: math.sqrt(sums[k] / (2.0 * pairs * first[k].size)) if first[k].size else 0.0 for k in first
        }
        return self.noise

    def tolerances(self) -> dict[str, float]:
        """Per-group tolerance: the configured one, raised above the measured noise floor of that group."""
        if self.noise is None:
            return {}
        return {
            k: max(self.tolerance, noise_z(self.knob_gains[k].size if k in self.knob_gains else 1) * sigma)
            for k, sigma in self.noise.items()
        }

    def probe(self, system: HomeostaticSystem, u: Arrays, iterations: int = 3,
              seed: int = 0) -> tuple[dict[str, float], int, int]:
        """Largest response of each group's θ to its own knobs, by power iteration on the knobs alone.

        Each group in turn: move its knobs by a small random δ (others fixed), relax, read Δθ, and take the
        excess Δθ − δ on the responding knobs as the next direction (see :func:`_excess`); ⟨Δθ, δ⟩/⟨δ, δ⟩ of the
        last step estimates the top eigenvalue of the group's block of (I + ε∇²F)⁻¹. Unlike the response along a
        hold's correction, it is not mixed with the other groups' moves. Then the same with every group's knobs
        at once (key :data:`JOINT`): the whole held point's top response. ``u`` is left as found and the system
        relaxed there. Returns (responses, relaxations, sweeps).
        """
        base = self.read(system)
        rng = np.random.default_rng(seed)
        tols = self.tolerances()
        responses: dict[str, float] = {}
        sweeps = relaxations = 0
        for name in u:
            size = u[name].size
            if not size:
                continue
            rms = float(np.sqrt(np.mean(base[name] ** 2)))
            sigma = (self.noise or {}).get(name, 0.0)
            step = max(1e-3 * rms, 10.0 * tols.get(name, self.tolerance), 30.0 * sigma) * math.sqrt(size)
            original = u[name].copy()
            direction = rng.standard_normal(u[name].shape)
            for _ in range(iterations):
                norm = float(np.linalg.norm(direction))
                if norm == 0.0 or not math.isfinite(norm):
                    break
                delta = direction * (step / norm)
                u[name] = original + delta
                system.set_controls(u)
                sweeps += system.relax().sweeps
                relaxations += 1
                moved = self.read(system)[name] - base[name]
                responses[name] = float(np.sum(moved * delta) / np.sum(delta * delta))
                direction = _excess(moved, delta)
            u[name] = original
        # Jointly: the groups share the state, so the stability of the whole held point is the top eigenvalue of
        # the full response, which no single group's block shows.
        original_all = {k: v.copy() for k, v in u.items()}
        steps = {}
        for name in u:
            rms = float(np.sqrt(np.mean(base[name] ** 2))) if u[name].size else 0.0
            sigma = (self.noise or {}).get(name, 0.0)
            steps[name] = max(1e-3 * rms, 10.0 * tols.get(name, self.tolerance), 30.0 * sigma)
        directions = {k: rng.standard_normal(v.shape) * steps[k] for k, v in u.items()}
        radius = math.sqrt(sum(float(np.sum(d * d)) for d in directions.values()))
        for _ in range(2 * iterations + 2):
            norm = math.sqrt(sum(float(np.sum(d * d)) for d in directions.values()))
            if norm == 0.0 or not math.isfinite(norm):
                break
            moves = {k: d * (radius / norm) for k, d in directions.items()}
            for k in u:
                u[k] = original_all[k] + moves[k]
            system.set_controls(u)
            sweeps += system.relax().sweeps
            relaxations += 1
            new = self.read(system)
            responses[JOINT] = sum(float(np.sum((new[k] - base[k]) * moves[k])) for k in u) / radius**2
            directions = {k: _excess(new[k] - base[k], moves[k]) for k in u}
        for k in u:
            u[k] = original_all[k]
        system.set_controls(u)
        sweeps += system.relax().sweeps
        return responses, relaxations + 1, sweeps

    def gain(self, name: str) -> np.ndarray:
        """Present gain of every knob of group ``name``."""
        return self.group_gains[name] * self.knob_gains[name]

    # --- the loop -----------------------------------------------------------------------------------------
    def hold(self, system: HomeostaticSystem, u: Arrays, set_point: Arrays, theta: Arrays) -> tuple[Arrays, HoldReport]:
        """Adjust ``u`` (in place) until ``theta`` is within tolerance of ``set_point``; return the held θ.

        Knobs resting on a stop are reported in the :class:`HoldReport`, not counted as failures. Raises
        :class:`NotHeld` naming the groups and knob counts still out of tolerance after ``max_iterations``.
        """
        for name, value in u.items():
            if name not in self.knob_gains or self.knob_gains[name].shape != value.shape:
                self.knob_gains[name] = np.ones_like(value)
                self.group_gains[name] = 1.0
                self.dead_counts[name] = np.zeros(value.shape, dtype=np.int32)
        if self.noise is None:
            self.measure_noise(system)
        tols = self.tolerances()
        noisy = any(v > 0 for v in (self.noise or {}).values())
        error = {name: set_point[name] - theta[name] for name in set_point}
        response: dict[str, float] = {}
        stopped = {name: np.zeros(e.shape, dtype=bool) for name, e in error.items()}
        sweeps = 0
        worst = 0.0
        for iteration in range(self.max_iterations + 1):
            out = {n: (np.abs(e) > tols.get(n, self.tolerance)) & ~stopped[n] for n, e in error.items()}
            worst = max((float(np.max(np.abs(e[out[n]]))) for n, e in error.items() if np.any(out[n])), default=0.0)
            # Under read noise, stopping as soon as the *measured* error looks small would keep whatever part of
            # the true error the noise hid, a bias against the step: make at least one full correction, whose
            # residual is then the (zero-mean) read noise itself.
            if not any(np.any(o) for o in out.values()) and (iteration >= 1 or not noisy):
                return theta, self._report(iteration, sweeps, error, stopped, response)
            if iteration == self.max_iterations:
                break
            step = {}
            for name, e in error.items():
                move = out[name] | (noisy & ~stopped[name]) if iteration == 0 else ~stopped[name]
                step[name] = np.where(move, self.gain(name) * e, 0.0)
                u[name] += step[name]
            system.set_controls(u)
            sweeps += system.relax().sweeps
            new = self.read(system)
            for name, e in error.items():
                if self.adaptive:
                    r = self._update_gains(name, step[name], new[name] - theta[name], e, out[name])
                    if r is not None:
                        response[name] = max(response.get(name, -math.inf), r)
                    # A knob dead for stop_after iterations rests on a stop: stop pushing it (anti-windup).
                    now = out[name] & (self.dead_counts[name] >= self.stop_after)
                    if np.any(now):
                        stopped[name] |= now
                        self.knob_gains[name][now] = 1.0
                error[name] = set_point[name] - new[name]
            theta = new
        counts = {n: int(np.count_nonzero(o)) for n, o in out.items()}
        total = sum(e.size for e in error.values())
        worst_name = max(counts, key=lambda n: float(np.max(np.abs(error[n][out[n]]))) if counts[n] else -1.0)
        stops = {n: int(np.count_nonzero(s)) for n, s in stopped.items() if np.any(s)}
        raise NotHeld(
            f"homeostasis: {sum(counts.values())} of {total} knobs could not hold their parameter within "
            f"tolerance ({', '.join(f'{n} {tols.get(n, self.tolerance):.3g}' for n in counts if counts[n])}) "
            f"of its set point after {self.max_iterations} iterations (largest error {worst:.3g} in {worst_name}; "
            "per group: " + ", ".join(f"{n}={c}" for n, c in counts.items() if c) + ")"
            + (f"; resting on a stop and not pushed: {stops}" if stops else ""),
            {n: c for n, c in counts.items() if c},
        )

    def _report(self, iteration: int, sweeps: int, error: Arrays, stopped: dict[str, np.ndarray],
                response: dict[str, float]) -> HoldReport:
        held = [np.abs(e[~stopped[n]]) for n, e in error.items()]
        worst = max((float(np.max(h)) for h in held if h.size), default=0.0)
        stops = {n: int(np.count_nonzero(s)) for n, s in stopped.items() if np.any(s)}
        return HoldReport(iteration, sweeps, worst, dict(response), stops)

    def _update_gains(self, name: str, du: np.ndarray, dtheta: np.ndarray, error: np.ndarray,
                      active: np.ndarray) -> float | None:
        """Group gain from the collective response; knob multipliers from each knob's own progress.

        Returns the collective response measured along this correction (None if nothing responded).
        """
        if not np.any(active):
            return None
        sigma = (self.noise or {}).get(name, 0.0)
        if sigma > 0 and float(np.sqrt(np.mean(error[active] ** 2))) < 10.0 * sigma:
            # A correction this close to the noise floor measures the noise, and a noisy error enters both Δu
            # and Δθ (their product biases the response upward): learn nothing from it.
            return None
        knobs, dead_counts = self.knob_gains[name], self.dead_counts[name]
        moved = active & (du != 0)
        # Progress of each knob: the fraction of its error its parameter covered.
        with np.errstate(divide="ignore", invalid="ignore"):
            progress = np.where(moved, dtheta / np.where(error == 0, 1.0, error), 0.0)
        # Barely responding to its own move (a bound, a soft stop, a broken line): if the parameter still made
        # some progress, take the knob's own secant; if none, double. Responsive knobs return to 1.
        slow = moved & (np.abs(dtheta) < DEAD * np.abs(du))
        dead = slow & (progress < 0.05)
        weak = slow & ~dead
        responsive = moved & ~slow & (dtheta * du > 0)
        np.copyto(knobs, np.minimum(2.0 * knobs, self.max_gain), where=dead)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.copyto(knobs, np.clip(knobs * 0.8 / np.maximum(progress, 1e-300), 1.0, self.max_gain), where=weak)
        np.copyto(knobs, 1.0, where=responsive)
        dead_counts[dead] += 1
        dead_counts[moved & ~dead] = 0
        if not np.any(responsive):
            return None
        d_u, d_theta = du[responsive], dtheta[responsive]
        response = float(np.dot(d_theta, d_u) / np.dot(d_u, d_u))
        if response > 1.0 / GROUP_CLIP:
            self.group_gains[name] = float(np.clip(1.0 / response, 1.0 / GROUP_CLIP, GROUP_CLIP))
        return response

    # --- checkpoints --------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {
            "group_gains": dict(self.group_gains),
            "knob_gains": {k: v.copy() for k, v in self.knob_gains.items()},
            "dead_counts": {k: v.copy() for k, v in self.dead_counts.items()},
            "noise": None if self.noise is None else dict(self.noise),
        }

    def load_state_dict(self, state: dict) -> None:
        self.group_gains = {k: float(v) for k, v in state.get("group_gains", {}).items()}
        self.knob_gains = {k: np.array(v, dtype=np.float64) for k, v in state.get("knob_gains", {}).items()}
        counts = state.get("dead_counts") or {k: np.zeros(v.shape) for k, v in self.knob_gains.items()}
        self.dead_counts = {k: np.array(v, dtype=np.int32) for k, v in counts.items()}
        noise = state.get("noise")
        self.noise = None if noise is None else {k: float(v) for k, v in noise.items()}


__all__ = ["JOINT", "HoldReport", "Homeostat", "NotHeld", "noise_z"]
