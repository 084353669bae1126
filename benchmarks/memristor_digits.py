"""Digits on the realistic memristor preset: open loop vs write-verify, N = 1 vs N = 4 reads, adaptive N.

Runs ``protocols/digits-memristor.toml`` through ``aeqprop.sweep`` (2 local workers, resumable: run folders in
runs/memristor_digits) over programming mode x reads x seed, plus adaptive reads and the ideal-device
reference (same network, linear noiseless devices with 2^20 levels), and writes a table of mean final test
accuracy (and its spread over seeds), pulses per step and reads used.

    python benchmarks/memristor_digits.py
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_json

from aeqprop.protocol import read_raw
from aeqprop.sweep import run_sweep

PRESET = ROOT / "protocols" / "digits-memristor.toml"
SEEDS = "0,1,2"
IDEAL = [
    "system.read_noise_v=0.0",
    'system.device={g_min = 0.0, g_max = 0.4, levels = 1048576}',
    "algorithm.programming.levels=1048576", "algorithm.programming.a_pot=inf", "algorithm.programming.a_dep=inf",
]
VARIANTS = {
    "main": (["algorithm.programming.write_verify=false,true", "algorithm.reads=1,4", f"run.seed={SEEDS}"], []),
    "adaptive": ([f"run.seed={SEEDS}"], ["algorithm.adaptive_reads=true", "algorithm.reads=2",
                                          "algorithm.programming.write_verify=true", "algorithm.max_reads=32"]),
    "tight": (["algorithm.reads=1,4", f"run.seed={SEEDS}"], ["algorithm.programming.write_verify=true",
                                                             "algorithm.programming.verify_tolerance=0.5"]),
    "ideal": ([f"run.seed={SEEDS}"], IDEAL),
}


def last_metrics(run_dir: str) -> dict:
    lines = (Path(run_dir) / "metrics.jsonl").read_text().splitlines()
    return json.loads(lines[-1]) if lines else {}


def main() -> int:
    raw = read_raw(PRESET)
    rows = []
    start = time.perf_counter()
    for name, (grid, fixed) in VARIANTS.items():
        result = run_sweep(str(PRESET.relative_to(ROOT)), raw, grid, ROOT / "runs" / "memristor_digits" / name,
                           fixed=fixed, workers=2)
        for row in result.rows:
            if row["status"] != "completed":
                print(f"{row['point']}: {row['error']}", file=sys.stderr)
                continue
            m = last_metrics(row["run_dir"])
            wv = row.get("algorithm.programming.write_verify", name == "adaptive")
            label = {"ideal": "ideal devices (reference)", "adaptive": "write-verify, adaptive N"}.get(
                name, f"{'write-verify' if wv else 'open loop'}, N = {row.get('algorithm.reads')}")
            if name == "tight":
                label = f"write-verify (tolerance 0.5 pulse), N = {row.get('algorithm.reads')}"
            rows.append({"config": label, "seed": row["seed"], "test_accuracy": row["test_accuracy"],
                         "reads": m.get("reads"), "reads_final": m.get("reads_final"),
                         "pulses_per_step": m.get("pulses_per_step"),
                         "verify_rounds_per_step": m.get("verify_rounds_per_step"), "wall_s": row["wall_s"]})
    table = {}
    for label in dict.fromkeys(r["config"] for r in rows):
        members = [r for r in rows if r["config"] == label]
        acc = np.array([r["test_accuracy"] for r in members])

        def mean(key: str) -> float | None:
            vals = [r[key] for r in members if r[key] is not None]
            return float(np.mean(vals)) if vals else None

        table[label] = {
            "test_accuracy_mean": float(acc.mean()),
            "test_accuracy_std": float(acc.std(ddof=1)) if len(acc) > 1 else None,
            "seeds": len(acc), "reads_last_epoch": mean("reads"), "pulses_per_step_last_epoch": mean("pulses_per_step"),
            "verify_rounds_per_step_last_epoch": mean("verify_rounds_per_step"),
        }
    payload = {
        "benchmark": "memristor_digits", "preset": str(PRESET.relative_to(ROOT)), "protocol": raw,
        "variants": {k: {"grid": g, "fixed": f} for k, (g, f) in VARIANTS.items()},
        "table": table, "runs": rows, "wall_s": time.perf_counter() - start, "machine": machine(),
        "note": "final-epoch digits test accuracy (360 held-out samples); timings on a shared 2-core machine",
    }
    write_json("memristor_digits.json", payload)
    print(f"{'configuration':32s} {'test acc (mean ± sd)':>22s} {'reads':>6s} {'pulses/step':>12s} "
          f"{'verify rounds':>14s}")
    for label, t in table.items():
        sd = f"{100 * t['test_accuracy_std']:.1f}" if t["test_accuracy_std"] is not None else "-"
        pulses = f"{t['pulses_per_step_last_epoch']:.0f}" if t["pulses_per_step_last_epoch"] is not None else "-"
        rounds = t["verify_rounds_per_step_last_epoch"]
        print(f"{label:32s} {100 * t['test_accuracy_mean']:16.1f} ± {sd:4s} {t['reads_last_epoch']:6.1f} "
              f"{pulses:>12s} {'-' if rounds is None else f'{rounds:.2f}':>14s}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
