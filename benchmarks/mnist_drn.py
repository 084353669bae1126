"""Train a deep resistive network protocol on MNIST and record what the scale issue asks for.

Writes benchmarks/results/<output>: test error per epoch, seconds per epoch (training only and with
evaluation), sweeps per relaxation, samples/s, peak resident memory and BLAS threads of the process that
trained each epoch. The JSON is rewritten after every epoch, so a run cut short still leaves its figures.

With ``--run-dir`` the run goes through a run directory (resolved protocol, metrics.jsonl, a checkpoint after
every epoch) and ``--resume`` continues it in a later sitting; the JSON then covers every sitting.

    AEQPROP_DATA=/path/to/datasets python benchmarks/mnist_drn.py [--protocol P] [--epochs N] [--set key=value]
    OPENBLAS_NUM_THREADS=1 python benchmarks/mnist_drn.py --protocol protocols/mnist-drn1h.toml \\
        --run-dir runs/drn1h --output mnist_drn1h.json            # first sitting
    ... same command with --resume                                      # every later sitting
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

from _common import ROOT, default_data_root, machine, peak_rss_mb, write_json

from aeqprop.data import load_dataset
from aeqprop.protocol import build, load_protocol, read_raw, to_dict, validate_raw
from aeqprop.rundir import RunDirectory
from aeqprop.trainer import Trainer, TrainSettings


def blas_threads() -> dict[str, Any]:
    """Threads each BLAS/OpenMP pool of this process may use (what the timing figures depend on)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # optional: fall back to the environment
        return {"OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS")}
    return {f"{p['internal_api']}:{os.path.basename(p['filepath'])}": p["num_threads"] for p in threadpool_info()}


def same_protocol(saved: dict[str, Any], given: dict[str, Any]) -> str | None:
    """First field (other than run.epochs) where the protocols differ, or None."""
    saved = {**saved, "run": {k: v for k, v in saved["run"].items() if k != "epochs"}}
    given = {**given, "run": {k: v for k, v in given["run"].items() if k != "epochs"}}
    for section in sorted(set(saved) | set(given)):
        if saved.get(section) != given.get(section):
            return section
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "mnist-drn100.toml"))
    parser.add_argument("--epochs", type=int, default=None, help="default: the protocol's run.epochs")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--output", default="mnist_drn.json")
    parser.add_argument("--run-dir", help="train through this run directory (checkpoint every epoch)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its checkpoint")
    args = parser.parse_args()
    if args.resume and not args.run_dir:
        print("--resume needs --run-dir", file=sys.stderr)
        return 2
    overrides = list(args.overrides) + ([f"run.epochs={args.epochs}"] if args.epochs else [])
    protocol = load_protocol(args.protocol, overrides)
    run_dir = None
    if args.run_dir and args.resume:
        run_dir = RunDirectory.open(args.run_dir)
        saved = to_dict(validate_raw(read_raw(run_dir.protocol_path), str(run_dir.protocol_path)))
        differs = same_protocol(saved, to_dict(protocol))
        if differs:
            print(f"--resume: section [{differs}] differs from the run in {args.run_dir}", file=sys.stderr)
            return 2
    elif args.run_dir:
        run_dir = RunDirectory.create(args.run_dir, to_dict(protocol))
    data = load_dataset(protocol.data.name, protocol.data.root or default_data_root())
    data = data.limit(protocol.data.train_limit, protocol.data.test_limit)
    parts = build(protocol)
    command = " ".join([os.path.basename(sys.executable), *sys.argv])
    sitting = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command,
               "threads": blas_threads(), "load_average_at_start": os.getloadavg()}

    def record(metrics: dict[str, Any]) -> bool:
        # Stored in the history (and so in the checkpoint), so a resumed run keeps earlier sittings' figures.
        metrics.update(peak_rss_mb=peak_rss_mb(), threads=sitting["threads"], sitting_started=sitting["started"],
                       load_average=os.getloadavg()[0])
        write_json(args.output, summarise(protocol, trainer, sitting))
        return False

    settings = TrainSettings(epochs=protocol.run.epochs, batch_size=protocol.run.batch_size,
                             eval_batch_size=protocol.run.eval_batch_size, seed=protocol.run.seed,
                             checkpoint_every=protocol.run.checkpoint_every,
                             target_low=protocol.data.target_low, target_high=protocol.data.target_high,
                             log=lambda line: print(line, flush=True))
    trainer = Trainer(parts.system, parts.rule, data, settings, parts.shuffle_rng, run_dir, callback=record)
    if args.resume:
        trainer.resume()
        print(f"resuming {args.run_dir} after epoch {trainer.state.epoch}", flush=True)
    trainer.fit()
    result = summarise(protocol, trainer, sitting)
    path = write_json(args.output, result)
    print(f"wrote {path}: final test error {100 * result['final_test_error']:.2f} %, "
          f"{result['mean_train_s_per_epoch']:.1f} s/epoch, peak RSS {result['peak_rss_mb']:.0f} MB")
    return 0


def summarise(protocol, trainer: Trainer, sitting: dict[str, Any]) -> dict[str, Any]:
    hist = trainer.state.history
    return {
        "protocol": to_dict(protocol),
        "machine": machine(),
        "note": "2-core machine shared with other jobs: timings were taken under load (see load_average)",
        "last_sitting": sitting,
        "epochs_done": len(hist),
        "epochs": [
            {"epoch": h["epoch"], "test_error": 1 - h["test_accuracy"], "train_error": 1 - h["train_accuracy"],
             "train_s": h["train_s"], "epoch_s": h["wall_s"], "samples_per_s": h["samples_per_s"],
             "sweeps_per_relaxation": h["sweeps_per_relaxation"], "peak_rss_mb": h.get("peak_rss_mb"),
             "threads": h.get("threads"), "sitting_started": h.get("sitting_started"),
             "load_average": h.get("load_average")}
            for h in hist
        ],
        "final_test_error": 1 - hist[-1]["test_accuracy"] if hist else None,
        "best_test_error": 1 - max(h["test_accuracy"] for h in hist) if hist else None,
        "mean_train_s_per_epoch": sum(h["train_s"] for h in hist) / len(hist) if hist else None,
        "total_wall_s": trainer.state.wall_s,
        "peak_rss_mb": max((h.get("peak_rss_mb") or 0.0) for h in hist) if hist else peak_rss_mb(),
    }


if __name__ == "__main__":
    sys.exit(main())
