"""Digits on the chip's twin vs on the chip: does rehearsing on the twin predict the chip?

Characterises ``protocols/chip.toml`` (the simulated chip whose device numbers the controller is not told)
through the contract, writes its device file, then trains digits with the same protocol on the chip and on
its twin (``protocols/chip-twin.toml``: the crossbar built from the device file), both programmed with the
measured device file, over several seeds; reports mean and spread of the final and best test accuracy. Also
reports the pooled fit against the chip's hidden device numbers, and time and energy per training sample.

    python benchmarks/chip_twin.py [--seeds 0,1,2] [--epochs 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, machine, write_json

from aeqprop.characterise import Characteriser, Settings
from aeqprop.characterise_fit import fit
from aeqprop.cli import main as cli
from aeqprop.protocol import build, load_protocol

CHIP = ROOT / "protocols" / "chip.toml"
TWIN = ROOT / "protocols" / "chip-twin.toml"


def train(protocol: Path, device_file: Path, out: Path, seed: int, epochs: int, twin: bool) -> dict:
    sets = [f"run.seed={seed}", f"run.epochs={epochs}", f"algorithm.programming.device_file={device_file}"]
    if twin:
        sets.append(f"system.device_file={device_file}")
    args = ["run", str(protocol), "--out", str(out), "--no-progress"]
    for s in sets:
        args += ["--set", s]
    if cli(args) != 0:
        raise SystemExit(f"run failed: {out}")
    lines = (out / "metrics.jsonl").read_text().splitlines()
    hist = [json.loads(line) for line in lines]
    return {"final": hist[-1]["test_accuracy"], "best": max(h["test_accuracy"] for h in hist),
            "last3": float(np.mean([h["test_accuracy"] for h in hist[-3:]])),
            "energy_per_sample_j": hist[-1].get("energy_per_sample_j"),
            "time_per_sample_s": hist[-1].get("time_per_sample_s")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", default=str(ROOT / "runs" / "chip_twin"))
    args = parser.parse_args()
    out = Path(args.out) / time.strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True)
    start = time.perf_counter()
    protocol = load_protocol(CHIP)
    system = build(protocol).system
    settings = Settings(cycles=3, pulses=64)
    devices = fit(Characteriser(system, settings).run(), settings, system.spec.description)
    device_file = out / "devices.json"
    devices.save(device_file)
    characterise_s = time.perf_counter() - start
    hidden = protocol.system.device
    fitted = {k: getattr(devices.pooled, k) for k in ("levels", "a_pot", "a_dep", "c2c", "d2d", "read_noise")}
    truth = {k: getattr(hidden, k) for k in fitted}
    true_stuck = sum(int(np.count_nonzero(a.stuck)) for a in system.devices.values())
    rows = {"chip": [], "twin": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
        rows["chip"].append(train(CHIP, device_file, out / f"chip-{seed}", seed, args.epochs, twin=False))
        rows["twin"].append(train(TWIN, device_file, out / f"twin-{seed}", seed, args.epochs, twin=True))
    summary = {}
    for name, runs in rows.items():
        final = np.array([r["final"] for r in runs])
        best = np.array([r["best"] for r in runs])
        last3 = np.array([r["last3"] for r in runs])
        summary[name] = {"final_mean": float(final.mean()), "final_std": float(final.std()),
                         "best_mean": float(best.mean()), "last3_mean": float(last3.mean()),
                         "last3_std": float(last3.std()), "runs": runs}
    gap = 100 * (summary["twin"]["final_mean"] - summary["chip"]["final_mean"])
    gap3 = 100 * (summary["twin"]["last3_mean"] - summary["chip"]["last3_mean"])
    payload = {
        "protocol": str(CHIP.relative_to(ROOT)), "seeds": args.seeds, "epochs": args.epochs,
        "fit_vs_hidden": {"fitted": fitted, "hidden": truth, "stuck_found": len(devices.stuck),
                          "stuck_true": true_stuck},
        "characterise_s": characterise_s, "results": summary, "twin_minus_chip_points": gap,
        "twin_minus_chip_points_last3": gap3,
        "wall_s": time.perf_counter() - start, "machine": machine(),
        "note": "timings on a shared, loaded machine (OPENBLAS_NUM_THREADS=1)",
    }
    path = write_json("chip_twin.json", payload)
    print(json.dumps({k: payload[k] for k in ("fit_vs_hidden", "twin_minus_chip_points",
                                              "twin_minus_chip_points_last3")}, indent=1))
    for name in rows:
        s = summary[name]
        print(f"{name}: final {100 * s['final_mean']:.2f} ± {100 * s['final_std']:.2f} %, mean of the last 3 epochs "
              f"{100 * s['last3_mean']:.2f} ± {100 * s['last3_std']:.2f} %, best {100 * s['best_mean']:.2f} %")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
