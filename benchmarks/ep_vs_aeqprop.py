"""Classic EP vs Agnostic EP side by side on one network: same sizes, energy, seed, batch and data order.

Runs two protocols one after the other — one trained by classic EP (measured ∂E/∂θ, programmed SGD increments;
e.g. kind ``hopfield`` or ``resistive``) and one trained by Aeqprop (the parameters' own drift, held by the
homeostat; kind ``hopfield-floating`` or ``resistive-floating``) — on the same data, and records for each: test
accuracy after every ``--eval-every`` training samples and after each epoch, training seconds per epoch
(evaluation excluded, timed separately; wall clock and this process's CPU time, which load from other jobs
disturbs less), relaxations and homeostasis iterations per batch, and for Aeqprop what
the stability guard measured (ε used, probed ε·λ).

    OPENBLAS_NUM_THREADS=1 AEQPROP_DATA=/path/to/datasets python benchmarks/ep_vs_aeqprop.py \
        --ep protocols/mnist-hopfield-512.toml --aeqprop protocols/mnist-aeqprop-512.toml \
        --set data.train_limit=20000 --eval-every 10000 --name hopfield_mnist_20k

Both protocols must agree on the system's sizes, the seed and the batch size (checked); settings only one kind
has (``init_abs``, ``coupling_eps``) are listed in the JSON under ``differences``. On a shared machine the
timings are upper bounds; their ratio is the figure to read.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

import numpy as np
from _common import default_data_root, machine, peak_rss_mb, write_json

from aeqprop.data import load_data, one_hot
from aeqprop.protocol import Protocol, build, load_protocol, to_dict
from aeqprop.system import AeqpropError
from aeqprop.trainer import evaluate


def _load(path: str, overrides: list[str]) -> Protocol:
    protocol = load_protocol(path, overrides)
    if protocol.data.root is None:
        protocol = protocol.model_copy(update={"data": protocol.data.model_copy(update={"root": default_data_root()})})
    return protocol


SHARED = ("inputs", "hidden", "outputs", "input_gain", "init_gain", "bias_init", "g_min", "g_max", "dtype")


def _same_network(ep: Protocol, aeq: Protocol) -> dict[str, Any]:
    """Refuse a comparison that is not like-for-like; return the settings only one of the two kinds has."""
    for field in SHARED:
        a, b = getattr(ep.system, field, None), getattr(aeq.system, field, None)
        if a != b:
            raise SystemExit(f"system.{field} differs: {a} (EP) vs {b} (Aeqprop)")
    for field in ("seed", "batch_size", "epochs"):
        a, b = getattr(ep.run, field), getattr(aeq.run, field)
        if a != b:
            raise SystemExit(f"run.{field} differs: {a} (EP) vs {b} (Aeqprop)")
    mine, theirs = ep.system.model_dump(), aeq.system.model_dump()
    return {"ep_only": {k: v for k, v in mine.items() if k not in theirs},
            "aeqprop_only": {k: v for k, v in theirs.items() if k not in mine}}


def run(protocol: Protocol, eval_every: int | None) -> dict[str, Any]:
    """Train ``protocol`` as the trainer does (one permutation per epoch from the shuffle generator)."""
    data = load_data(protocol.data)
    parts = build(protocol)
    batch = protocol.run.batch_size
    targets = one_hot(data.y_train, data.n_classes, protocol.data.target_low, protocol.data.target_high)
    n = len(data.x_train)
    seen, epochs, curve, error = 0, [], [], None

    def test() -> float:
        t0 = time.perf_counter()
        acc = evaluate(parts.rule, parts.system, data.x_test, data.y_test, protocol.run.eval_batch_size)
        curve.append({"samples": seen, "test_accuracy": acc, "eval_s": time.perf_counter() - t0})
        print(f"  {seen} samples: test {100 * acc:.2f} %", flush=True)
        return acc

    for epoch in range(1, protocol.run.epochs + 1):
        order = parts.shuffle_rng.permutation(n)
        train_s, cpu_s, relaxations, holds, correct, batches = 0.0, 0.0, 0, 0, 0, 0
        try:
            for b in range(0, n, batch):
                idx = order[b : b + batch]
                t0, c0 = time.perf_counter(), time.process_time()
                report = parts.rule.train_step(parts.system, data.x_train[idx], targets[idx])
                train_s += time.perf_counter() - t0
                cpu_s += time.process_time() - c0
                batches += 1
                relaxations += report.relaxations
                holds += report.homeostasis_iterations
                correct += int(np.count_nonzero(report.outputs.argmax(axis=1) == data.y_train[idx]))
                seen += len(idx)
                if eval_every and seen // eval_every > (seen - len(idx)) // eval_every and b + batch < n:
                    test()
        except AeqpropError as exc:
            error = f"epoch {epoch}, sample {seen}: {exc}"
            print(error, flush=True)
        extra = parts.rule.epoch_metrics() if hasattr(parts.rule, "epoch_metrics") else {}
        parts.rule.end_epoch()
        acc = None if error else test()
        epochs.append({
            "epoch": epoch, "test_accuracy": acc, "train_accuracy": correct / max(1, seen - (epoch - 1) * n),
            "train_s": train_s, "train_cpu_s": cpu_s, "relaxations_per_batch": relaxations / max(1, batches),
            "homeostasis_iterations_per_batch": holds / max(1, batches), "rule": extra,
        })
        print(f"{protocol.system.kind} epoch {epoch}: test {acc}, {train_s:.1f} s training", flush=True)
        if error:
            break
    return {"protocol": to_dict(protocol), "train_samples": n, "test_samples": len(data.x_test),
            "epochs": epochs, "curve": curve, "error": error}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ep", required=True, help="classic-EP protocol (e.g. kind 'hopfield', 'resistive')")
    parser.add_argument("--aeqprop", required=True, help="Aeqprop protocol (its floating twin)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], help="applied to both protocols")
    parser.add_argument("--eval-every", type=int, default=None, help="also test after every N training samples")
    parser.add_argument("--name", default="ep_vs_aeqprop")
    args = parser.parse_args()
    ep, aeq = _load(args.ep, args.overrides), _load(args.aeqprop, args.overrides)
    differences = _same_network(ep, aeq)
    results = {"ep": run(ep, args.eval_every), "aeqprop": run(aeq, args.eval_every)}
    ratio = []
    for e, a in zip(results["ep"]["epochs"], results["aeqprop"]["epochs"]):
        ratio.append({"epoch": e["epoch"], "ep_test": e["test_accuracy"], "aeqprop_test": a["test_accuracy"],
                      "ep_train_s": e["train_s"], "aeqprop_train_s": a["train_s"],
                      "time_ratio": a["train_s"] / e["train_s"] if e["train_s"] else None,
                      "cpu_ratio": a["train_cpu_s"] / e["train_cpu_s"] if e["train_cpu_s"] else None})
    payload = {
        "benchmark": args.name, "side_by_side": ratio, "differences": differences, **results,
        "openblas_num_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
        "peak_rss_mb": peak_rss_mb(), "machine": machine(),
        "note": "shared 2-core machine under load from other jobs (nice 19): timings are upper bounds",
    }
    print(write_json(f"{args.name}.json", payload))
    for row in ratio:
        print(row)


if __name__ == "__main__":
    main()
