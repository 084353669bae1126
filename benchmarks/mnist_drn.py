"""Train protocols/mnist-drn100.toml (the DRN-XS recipe) and record what the issue asks for.

Writes benchmarks/results/mnist_drn.json: test error per epoch, seconds per epoch (training only and with
evaluation), sweeps per relaxation, samples/s and peak resident memory.

    AEQPROP_DATA=../shared/datasets python benchmarks/mnist_drn.py [--epochs 10] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
import time

from _common import ROOT, default_data_root, machine, peak_rss_mb, write_json

from aeqprop.data import load_dataset
from aeqprop.protocol import build, load_protocol, to_dict
from aeqprop.trainer import Trainer, TrainSettings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "mnist-drn100.toml"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the protocol's run.epochs")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", default="mnist_drn.json")
    args = parser.parse_args()
    overrides = list(args.overrides) + ([f"run.epochs={args.epochs}"] if args.epochs else [])
    protocol = load_protocol(args.protocol, overrides)
    data = load_dataset(protocol.data.name, protocol.data.root or default_data_root())
    data = data.limit(protocol.data.train_limit, protocol.data.test_limit)
    parts = build(protocol)
    settings = TrainSettings(epochs=protocol.run.epochs, batch_size=protocol.run.batch_size,
                             eval_batch_size=protocol.run.eval_batch_size, seed=protocol.run.seed,
                             target_low=protocol.data.target_low, target_high=protocol.data.target_high,
                             log=lambda line: print(line, flush=True))
    trainer = Trainer(parts.system, parts.rule, data, settings, parts.shuffle_rng)
    start = time.perf_counter()
    trainer.fit()
    hist = trainer.state.history
    result = {
        "protocol": to_dict(protocol),
        "machine": machine(),
        "epochs": [
            {"epoch": h["epoch"], "test_error": 1 - h["test_accuracy"], "train_error": 1 - h["train_accuracy"],
             "train_s": h["train_s"], "epoch_s": h["wall_s"], "samples_per_s": h["samples_per_s"],
             "sweeps_per_relaxation": h["sweeps_per_relaxation"]}
            for h in hist
        ],
        "final_test_error": 1 - hist[-1]["test_accuracy"],
        "best_test_error": 1 - max(h["test_accuracy"] for h in hist),
        "mean_train_s_per_epoch": sum(h["train_s"] for h in hist) / len(hist),
        "total_s": time.perf_counter() - start,
        "peak_rss_mb": peak_rss_mb(),
    }
    path = write_json(args.output, result)
    print(f"wrote {path}: final test error {100 * result['final_test_error']:.2f} %, "
          f"{result['mean_train_s_per_epoch']:.1f} s/epoch, peak RSS {result['peak_rss_mb']:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
