"""Accuracy vs read-noise sigma for N repeated reads (Peters & Talatchian 2025, on our crossbar).

An ideal-device crossbar (linear, 2^20 levels, no variation) isolates the node-voltage read noise: every
output and local measurement carries Gaussian noise of sigma volts per read, averaged over N reads. The
critical sigma of each N is where the test accuracy falls halfway from its noiseless value to chance (10 %),
interpolated in log sigma; the claim to check is sigma_c(N) / sigma_c(1) ~ sqrt(N).

Runs through ``aeqprop.sweep`` (2 local workers, resumable: the run folders live in runs/noise_study).

    python benchmarks/noise_study.py [--quick]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import itertools

from _common import RESULTS, ROOT, machine, write_json

from aeqprop.sweep import run_sweep

PROTOCOL = {
    "version": 1,
    "system": {
        "kind": "crossbar", "inputs": 64, "hidden": [64], "outputs": 10, "input_gain": 40.0,
        "read_noise_v": 0.0, "device": {"g_max": 0.4, "levels": 1 << 20},
    },
    "algorithm": {"kind": "ep", "estimator": "centered", "beta": 1.0, "reads": 1},
    "optimizer": {"kind": "sgd", "lr": 0.02, "decay": 0.9},
    "data": {"name": "digits"},
    "run": {"epochs": 4, "seed": 0, "batch_size": 4},
}
SIGMAS = [0.0, 0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64]
READS = [1, 4, 16]
SEEDS = [0, 1]
CHANCE = 0.1


def critical_sigma(sigmas: list[float], acc: list[float], clean: float) -> float | None:
    """First sigma (log-interpolated) where accuracy drops below halfway between ``clean`` and chance."""
    level = 0.5 * (clean + CHANCE)
    pairs = [(s, a) for s, a in zip(sigmas, acc) if s > 0]
    for (s0, a0), (s1, a1) in itertools.pairwise(pairs):
        if a0 >= level > a1:
            t = (a0 - level) / (a0 - a1)
            return float(math.exp(math.log(s0) + t * (math.log(s1) - math.log(s0))))
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one seed, 2 epochs (a smoke run)")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    seeds = SEEDS[:1] if args.quick else SEEDS
    fixed = ["run.epochs=2"] if args.quick else []
    folder = ROOT / "runs" / ("noise_study_quick" if args.quick else "noise_study")
    start = time.perf_counter()
    result = run_sweep(
        "benchmarks/noise_study.py", PROTOCOL,
        [f"system.read_noise_v={','.join(map(str, SIGMAS))}", f"algorithm.reads={','.join(map(str, READS))}",
         f"run.seed={','.join(map(str, seeds))}"],
        folder, fixed=fixed, workers=args.workers,
    )
    wall = time.perf_counter() - start
    if result.failed:
        print(f"failed points: {result.failed}", file=sys.stderr)
    table: dict[int, dict[float, list[float]]] = {n: {s: [] for s in SIGMAS} for n in READS}
    for row in result.rows:
        if row["status"] == "completed":
            table[row["algorithm.reads"]][row["system.read_noise_v"]].append(row["test_accuracy"])
    curves = {}
    for n in READS:
        mean = [float(np.mean(table[n][s])) if table[n][s] else float("nan") for s in SIGMAS]
        curves[n] = mean
    clean = float(np.nanmean([curves[n][0] for n in READS]))
    crit = {n: critical_sigma(SIGMAS, curves[n], clean) for n in READS}
    base = crit[READS[0]]
    shift = {n: (crit[n] / base if crit[n] and base else None) for n in READS}
    payload = {
        "benchmark": "noise_study",
        "protocol": PROTOCOL, "fixed": fixed, "sigmas_v": SIGMAS, "reads": READS, "seeds": seeds,
        "test_accuracy_mean": {str(n): curves[n] for n in READS},
        "test_accuracy_runs": {str(n): {str(s): table[n][s] for s in SIGMAS} for n in READS},
        "noiseless_accuracy": clean,
        "critical_sigma_v": {str(n): crit[n] for n in READS},
        "critical_shift_vs_N1": {str(n): shift[n] for n in READS},
        "sqrt_N": {str(n): math.sqrt(n) for n in READS},
        "definition": "critical sigma: accuracy falls below (noiseless + chance)/2, log-interpolated",
        "points": len(result.rows), "ran": len(result.ran), "skipped": len(result.skipped),
        "failed": result.failed, "wall_s_this_invocation": wall,
        "run_wall_s_sum": float(sum(r["wall_s"] or 0 for r in result.rows)), "machine": machine(),
        "note": "timings on a shared 2-core machine; noisy",
    }
    name = "noise_study_quick" if args.quick else "noise_study"
    write_json(f"{name}.json", payload)
    plot(curves, crit, clean, RESULTS / f"{name}.png")
    for n in READS:
        print(f"N={n:2d}: critical sigma {crit[n]}  shift {shift[n]}  (sqrt N = {math.sqrt(n):.2f})")
    return 0


def plot(curves: dict[int, list[float]], crit: dict[int, float | None], clean: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2))
    floor = SIGMAS[1] / 2  # the noiseless point, drawn at the left edge of the log axis
    xs = [floor, *SIGMAS[1:]]
    for n in READS:
        line = ax.plot(xs, [100 * a for a in curves[n]], "o-", label=f"N = {n} reads")[0]
        if crit[n]:
            ax.axvline(crit[n], color=line.get_color(), ls="--", lw=1)
        bx.plot([s / math.sqrt(n) for s in SIGMAS[1:]], [100 * a for a in curves[n][1:]], "o-",
                color=line.get_color(), label=f"N = {n}")
    for axis in (ax, bx):
        axis.axhline(100 * 0.5 * (clean + CHANCE), color="grey", lw=0.8, ls=":", label="half-way to chance")
        axis.axhline(100 * CHANCE, color="black", lw=0.8, label="chance")
        axis.set_xscale("log")
        axis.set_ylabel("digits test accuracy (%)")
        axis.grid(alpha=0.3, which="both")
        axis.legend(fontsize=8)
    ax.set_xlabel("read noise σ per read (V)   [left-most point: σ = 0]")
    ax.set_title("accuracy vs read noise (dashed: critical σ for each N)", fontsize=10)
    bx.set_xlabel("effective noise σ/√N (V)")
    bx.set_title("same runs against σ/√N: the curves should collapse", fontsize=10)
    fig.suptitle("EP on an ideal-device crossbar, digits, 64 hidden, 4 epochs (mean over seeds)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
