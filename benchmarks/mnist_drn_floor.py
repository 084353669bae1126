"""Arithmetic floor of a DRN training epoch on this machine, and how far the simulator is from it.

The floor is the time the unavoidable kernels take when run alone at their exact shapes, measured here with
numpy (best of several repeats, so it is what this CPU and BLAS deliver, not a datasheet peak):

- input drive, once per batch: (B, 2n) @ (2n, h1), a skinny GEMM;
- every sweep: for each pair of free layers, the two GEMMs that pass voltages up and down, (B, n) @ (n, m);
  sweeps per batch = relaxations x sweeps per relaxation, as measured on the solver itself;
- every local-gradient read (two per batch for centered EP): one (n, B+2)^T @ (B+2, m) GEMM per layer;
- the parameter update: one in-place pass over every parameter (memory bound, timed as ``np.add(out=)``);
- evaluation of the test set at the evaluation batch size (drive + sweeps).

Then a few hundred real training batches are timed through the learning rule (CPU time, so other jobs on a
shared machine inflate it less than wall time) and extrapolated to an epoch. Writes
benchmarks/results/<output>.

    OPENBLAS_NUM_THREADS=1 python benchmarks/mnist_drn_floor.py --protocol protocols/mnist-drn1h.toml
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from typing import Any

import numpy as np
from _common import ROOT, default_data_root, machine, write_json

from aeqprop.data import load_dataset, one_hot
from aeqprop.protocol import build, load_protocol


def best_time(fn, repeats: int = 7, inner: int = 5) -> float:
    """Best mean CPU seconds per call over ``repeats`` runs of ``inner`` calls."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        for _ in range(inner):
            fn()
        best = min(best, (time.process_time() - start) / inner)
    return best


def kernel_times(sizes: list[int], batch: int, eval_batch: int, dtype: np.dtype) -> dict[str, Any]:
    """Seconds per call of each kernel at its shape, and its FLOP count."""
    rng = np.random.default_rng(0)
    out: dict[str, Any] = {}
    weights = [rng.random((a, b)).astype(dtype) for a, b in itertools.pairwise(sizes)]
    x = rng.random((batch, sizes[0])).astype(dtype)
    xe = rng.random((eval_batch, sizes[0])).astype(dtype)
    out["drive"] = {"s": best_time(lambda: x @ weights[0]), "flops": 2 * batch * sizes[0] * sizes[1]}
    out["drive_eval"] = {"s": best_time(lambda: xe @ weights[0], 3, 2), "flops": 2 * eval_batch * sizes[0] * sizes[1]}
    sweep_s = sweep_eval_s = 0.0
    sweep_flops = sweep_eval_flops = 0
    for k in range(1, len(weights)):
        w = weights[k]
        lo, hi = rng.random((batch, w.shape[0])).astype(dtype), rng.random((batch, w.shape[1])).astype(dtype)
        sweep_s += best_time(lambda: lo @ w) + best_time(lambda: hi @ w.T)
        sweep_flops += 4 * batch * w.shape[0] * w.shape[1]
        lo_e = rng.random((eval_batch, w.shape[0])).astype(dtype)
        hi_e = rng.random((eval_batch, w.shape[1])).astype(dtype)
        sweep_eval_s += best_time(lambda: lo_e @ w, 3, 2) + best_time(lambda: hi_e @ w.T, 3, 2)
        sweep_eval_flops += 4 * eval_batch * w.shape[0] * w.shape[1]
    out["sweep"] = {"s": sweep_s, "flops": sweep_flops}
    out["sweep_eval"] = {"s": sweep_eval_s, "flops": sweep_eval_flops}
    read_s, read_flops, update_s = 0.0, 0, 0.0
    for w in weights:
        left = rng.random((batch + 2, w.shape[0])).astype(dtype)
        right = rng.random((batch + 2, w.shape[1])).astype(dtype)
        buf = np.empty_like(w)
        read_s += best_time(lambda: np.matmul(left.T, right, out=buf))
        read_flops += 2 * (batch + 2) * w.shape[0] * w.shape[1]
        step = rng.random(w.shape).astype(dtype)
        update_s += best_time(lambda: np.add(w, step, out=w))
    out["read"] = {"s": read_s, "flops": read_flops}
    out["update"] = {"s": update_s, "flops": sum(w.size for w in weights)}
    for v in out.values():
        v["gflops_per_s"] = v["flops"] / v["s"] / 1e9 if v["s"] else None
    return out


def measure_training(protocol_path: str, overrides: list[str], batches: int) -> dict[str, Any]:
    """CPU seconds per training batch and sweeps per relaxation, over ``batches`` real MNIST batches."""
    protocol = load_protocol(protocol_path, overrides)
    data = load_dataset(protocol.data.name, protocol.data.root or default_data_root())
    parts = build(protocol)
    bs = protocol.run.batch_size
    targets = one_hot(data.y_train, data.n_classes, protocol.data.target_low, protocol.data.target_high)
    order = np.random.default_rng(protocol.run.seed).permutation(data.x_train.shape[0])
    sweeps = relaxations = 0
    warm = 50
    start = 0.0
    for b in range(warm + batches):
        if b == warm:
            start, sweeps, relaxations = time.process_time(), 0, 0
        idx = order[b * bs : (b + 1) * bs]
        report = parts.rule.train_step(parts.system, data.x_train[idx], targets[idx])
        sweeps += report.sweeps
        relaxations += report.relaxations
    cpu = (time.process_time() - start) / batches
    # Evaluation sweeps: one free relaxation per test batch.
    net = parts.system
    eb = protocol.run.eval_batch_size
    eval_sweeps = []
    for s in range(0, min(data.x_test.shape[0], 3 * eb), eb):
        net.clamp(data.x_test[s : s + eb])
        net.nudge(0.0)
        eval_sweeps.append(net.relax().sweeps)
    return {
        "cpu_s_per_batch": cpu, "sweeps_per_relaxation": sweeps / relaxations,
        "relaxations_per_batch": relaxations / batches, "eval_sweeps_per_relaxation": float(np.mean(eval_sweeps)),
        "batch_size": bs, "eval_batch_size": eb, "n_train": int(data.x_train.shape[0]),
        "n_test": int(data.x_test.shape[0]), "dtype": protocol.system.dtype,
        "sizes": [2 * protocol.system.inputs, *protocol.system.hidden, protocol.system.outputs],
        "reads_per_batch": 2 if protocol.algorithm.estimator == "centered" else None,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "mnist-drn1h.toml"))
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--batches", type=int, default=300, help="training batches timed")
    parser.add_argument("--output", default=None, help="default: floor_<protocol stem>.json")
    args = parser.parse_args()
    os.environ.setdefault("AEQPROP_DATA", default_data_root())
    run = measure_training(args.protocol, args.overrides, args.batches)
    k = kernel_times(run["sizes"], run["batch_size"], run["eval_batch_size"], np.dtype(run["dtype"]))
    n_batches = -(-run["n_train"] // run["batch_size"])
    n_eval = -(-run["n_test"] // run["eval_batch_size"])
    sweeps_per_batch = run["relaxations_per_batch"] * run["sweeps_per_relaxation"]
    per_batch = (k["drive"]["s"] + sweeps_per_batch * k["sweep"]["s"] + run["reads_per_batch"] * k["read"]["s"]
                 + k["update"]["s"])
    flops_batch = (k["drive"]["flops"] + sweeps_per_batch * k["sweep"]["flops"]
                   + run["reads_per_batch"] * k["read"]["flops"])
    eval_s = n_eval * (k["drive_eval"]["s"] + run["eval_sweeps_per_relaxation"] * k["sweep_eval"]["s"])
    floor_train = n_batches * per_batch
    measured_train = n_batches * run["cpu_s_per_batch"]
    from mnist_drn import blas_threads

    result = {
        "protocol": args.protocol, "overrides": args.overrides, "machine": machine(), "threads": blas_threads(),
        "note": "CPU-time measurements on a 2-core machine shared with other jobs (load_average)",
        "load_average": os.getloadavg(), "kernels": k, "run": run,
        "flops_per_epoch_train": n_batches * flops_batch,
        "floor_train_s_per_epoch": floor_train, "floor_eval_s": eval_s,
        "measured_train_s_per_epoch": measured_train, "ratio_to_floor": measured_train / floor_train,
    }
    name = args.output or f"floor_{os.path.splitext(os.path.basename(args.protocol))[0]}.json"
    write_json(name, result)
    print(f"{args.protocol}: {result['flops_per_epoch_train'] / 1e9:.0f} GFLOP/epoch (training), floor "
          f"{floor_train:.1f} s/epoch + {eval_s:.1f} s evaluation; measured {measured_train:.1f} s/epoch "
          f"(CPU time, {run['sweeps_per_relaxation']:.2f} sweeps/relaxation) = {result['ratio_to_floor']:.2f}x floor")
    for name_, v in k.items():
        print(f"  {name_:11s} {v['s'] * 1e6:9.1f} us/call  {v['flops'] / 1e6:8.2f} MFLOP  "
              f"{(v['gflops_per_s'] or 0):6.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
