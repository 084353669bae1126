"""Training throughput (samples/s) of the shipped digits protocol at several batch sizes.

Writes benchmarks/results/throughput.json. Besides wall-clock samples/s it records samples per CPU second spent
inside the learning rule, the figure that stays meaningful when other jobs share the machine. Batch 1 is what
hardware does (online training); public EP codebases report 150-420 samples/s at batch 1 and 500-3,000 at
larger batches on this kind of machine.

    python benchmarks/throughput.py [--batches 1 4 8] [--epochs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import time

from _common import ROOT, machine, write_json

from aeqprop.data import load_dataset
from aeqprop.protocol import build, load_protocol
from aeqprop.trainer import Trainer, TrainSettings


def measure(protocol_path: str, batch: int, epochs: int, extra: list[str]) -> dict:
    protocol = load_protocol(protocol_path, [f"run.batch_size={batch}", f"run.epochs={epochs}", *extra])
    data = load_dataset(protocol.data.name, protocol.data.root)
    parts = build(protocol)
    # CPU seconds inside the learning rule: on a shared machine wall time mostly measures the other jobs.
    cpu = [0.0]
    train_step = parts.rule.train_step

    def timed(system, x, target):
        start = time.process_time()
        report = train_step(system, x, target)
        cpu[0] += time.process_time() - start
        return report

    parts.rule.train_step = timed  # type: ignore[method-assign]
    settings = TrainSettings(epochs=epochs, batch_size=batch, progress=False, log=None)
    trainer = Trainer(parts.system, parts.rule, data, settings, parts.shuffle_rng)
    trainer.fit()
    hist = trainer.state.history
    best = max(h["samples_per_s"] for h in hist)
    samples = sum(1 for _ in hist) * data.x_train.shape[0]
    return {"batch_size": batch, "samples_per_s": best, "samples_per_cpu_s": samples / cpu[0],
            "load_average": os.getloadavg()[0], "per_epoch_samples_per_s": [h["samples_per_s"] for h in hist],
            "sweeps_per_relaxation": hist[-1]["sweeps_per_relaxation"], "test_accuracy": hist[-1]["test_accuracy"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "digits.toml"))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 8])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    rows = [measure(args.protocol, b, args.epochs, args.overrides) for b in args.batches]
    for row in rows:
        print(f"batch {row['batch_size']:>3}: {row['samples_per_s']:8.0f} samples/s wall, "
              f"{row['samples_per_cpu_s']:8.0f} per CPU second in the rule "
              f"({row['sweeps_per_relaxation']:.1f} sweeps per relaxation)")
    write_json("throughput.json", {"protocol": args.protocol, "overrides": args.overrides, "machine": machine(),
                                   "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                                   "note": "2-core machine shared with other jobs; see load_average per row",
                                   "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
