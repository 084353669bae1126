"""MNIST with Agnostic EP: one epoch of a protocol (optionally on the first N training samples), timed.

Seconds per full epoch are extrapolated from the measured seconds per batch when ``--train-limit`` is used,
and labelled so in the JSON. Failures of the physics (a coupling too strong to hold) are recorded, not hidden.

    AEQPROP_DATA=/path/to/datasets python benchmarks/mnist_aeqprop.py --protocol protocols/mnist-aeqprop.toml \
        --train-limit 640 --test-limit 1000

With ``--checkpoint DIR`` the epoch is checkpointed every ``--every`` batches and a rerun with the same
arguments continues from there (for long runs under nohup); seconds per batch then count training only.

On a shared machine set ``OPENBLAS_NUM_THREADS=1``: the relaxation is many small (batch-sized) products, for
which OpenBLAS's thread hand-off under load cost ~50x more than the arithmetic (measured 13 ms vs 0.25 ms for a
32x32 by 32x2048 product).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from _common import default_data_root, machine, peak_rss_mb, write_json

from aeqprop.data import load_dataset, one_hot
from aeqprop.protocol import build, load_protocol, to_dict
from aeqprop.rundir import RunDirectory
from aeqprop.system import AeqpropError
from aeqprop.trainer import evaluate

FULL_TRAIN = 60_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--protocol", default="protocols/mnist-aeqprop.toml")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--train-limit", type=int, default=None)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--name", default="mnist_aeqprop")
    parser.add_argument("--checkpoint", default=None, help="folder for a checkpoint every --every batches; an "
                        "existing checkpoint there is resumed (the epoch continues where it stopped)")
    parser.add_argument("--every", type=int, default=200)
    args = parser.parse_args()
    protocol = load_protocol(args.protocol, args.overrides)
    data = load_dataset("mnist", protocol.data.root or default_data_root()).limit(args.train_limit, args.test_limit)
    parts = build(protocol)
    batch = protocol.run.batch_size
    order = parts.shuffle_rng.permutation(len(data.x_train))
    targets = one_hot(data.y_train, 10, protocol.data.target_low, protocol.data.target_high)
    per_batch, holds, relaxations, trace, error = [], [], [], [], None
    first = 0
    store = None
    if args.checkpoint:
        store = RunDirectory.open(args.checkpoint) if Path(args.checkpoint).is_dir() else RunDirectory.create(
            args.checkpoint, to_dict(protocol))
        if store.has_checkpoint():
            arrays, state = store.load_checkpoint()
            parts.system.restore(arrays)
            parts.rule.load_state_dict(state["rule"])
            per_batch, holds = state["per_batch"], state["holds"]
            relaxations, trace = state["relaxations"], state["trace"]
            first = state["next"]
            print(f"resumed at batch {first // batch} from {args.checkpoint}", flush=True)
    start = time.perf_counter()
    for b in range(first, len(order), batch):
        if store is not None and b > first and (b // batch) % args.every == 0:
            store.save_checkpoint(parts.system.snapshot(), {
                "rule": parts.rule.state_dict(), "next": b, "per_batch": per_batch, "holds": holds,
                "relaxations": relaxations, "trace": trace})
        idx = order[b : b + batch]
        t0 = time.perf_counter()
        try:
            report = parts.rule.train_step(parts.system, data.x_train[idx], targets[idx])
        except AeqpropError as exc:
            error = f"batch {b // batch}: {exc}"
            print(error)
            break
        per_batch.append(time.perf_counter() - t0)
        holds.append(report.homeostasis_iterations)
        relaxations.append(report.relaxations)
        if b // batch % 50 == 0:  # ε per group over time and what the homeostat measured
            hold = parts.rule.last_hold
            trace.append({"batch": b // batch, "eps": parts.rule.eps(), "response": hold.response if hold else None,
                          "knobs_on_stops": hold.stopped if hold else None,
                          "lambda_estimate": dict(parts.rule.guard.lam) if parts.rule.guard else None})
        print(f"batch {b // batch}: {per_batch[-1]:.2f} s, {holds[-1]} homeostasis iterations", flush=True)
    train_s = float(np.sum(per_batch)) if first else time.perf_counter() - start
    test_accuracy = None
    if error is None:
        parts.rule.end_epoch()
        t0 = time.perf_counter()
        try:
            test_accuracy = evaluate(parts.rule, parts.system, data.x_test, data.y_test, protocol.run.eval_batch_size)
        except AeqpropError as exc:
            error = f"evaluation: {exc}"
        eval_s = time.perf_counter() - t0
    else:
        eval_s = None
    n_train = len(data.x_train)
    s_per_batch = float(np.mean(per_batch)) if per_batch else None
    payload = {
        "benchmark": args.name,
        "protocol": to_dict(protocol),
        "train_samples": n_train, "test_samples": len(data.x_test),
        "batches_done": len(per_batch), "seconds_per_batch": s_per_batch,
        "homeostasis_iterations_per_batch": float(np.mean(holds)) if holds else None,
        "relaxations_per_batch": float(np.mean(relaxations)) if relaxations else None,
        "eps_trace": trace,
        "epoch_metrics": parts.rule.epoch_metrics() if hasattr(parts.rule, "epoch_metrics") else None,
        "train_s": train_s, "eval_s": eval_s,
        "seconds_per_full_epoch_extrapolated": None if s_per_batch is None else s_per_batch * FULL_TRAIN / batch,
        "extrapolated": n_train < FULL_TRAIN,
        "seconds_per_epoch_measured": train_s if n_train == FULL_TRAIN and error is None else None,
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "test_accuracy_after_one_pass": test_accuracy,
        "error": error, "peak_rss_mb": peak_rss_mb(), "machine": machine(),
        "note": "shared 2-core machine under load from other jobs: timings are noisy upper bounds",
    }
    print(write_json(f"{args.name}.json", payload))
    shown = ("seconds_per_batch", "seconds_per_full_epoch_extrapolated", "test_accuracy_after_one_pass", "error")
    print({k: payload[k] for k in shown})


if __name__ == "__main__":
    main()
