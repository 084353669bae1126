"""Generalized EP on untied (asymmetric) networks, with and without Jacobian homeostasis.

For each initial mismatch of the backward couplings (``system.asymmetry``) train the digits network with
centered generalized EP, once plain and once with the homeostasis term (measured by state kicks + SPSA),
and record per epoch: test accuracy, the coupling asymmetry ‖v − wᵀ‖/‖w‖, and the gradient alignment
(cosine of the EP estimate at β = 0.01 with the oracle's true gradient on 100 test samples).
Writes benchmarks/results/asymmetry.json (``--out`` to rename).
Run: python benchmarks/asymmetry.py [--epochs N] [--train-limit N] [--asymmetry A ...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import machine, write_json
from aeqprop.simulators.smooth import oracle

from aeqprop.data import load_digits, one_hot
from aeqprop.estimators import estimate_gradient
from aeqprop.fidelity import cosine_similarity
from aeqprop.protocol import build, validate_raw
from aeqprop.trainer import Trainer, TrainSettings


def protocol(asymmetry: float, homeostasis: float, epochs: int, train_limit: int, hidden: list[int]) -> dict:
    """Centered generalized EP; homeostasis (if λ > 0) trims every backward coupling v2..vL."""
    algorithm = {"kind": "ep", "estimator": "centered", "beta": 0.2}
    if homeostasis > 0:
        groups = [f"v{k}" for k in range(2, len(hidden) + 2)]
        algorithm.update({"homeostasis": homeostasis, "homeostasis_params": groups,
                          "homeostasis_probes": 8, "homeostasis_kicks": 64})
    return {
        "version": 1,
        "system": {"kind": "asymmetric", "inputs": 64, "hidden": hidden, "outputs": 10, "asymmetry": asymmetry,
                   "tol": 1e-8, "damping": 0.5},
        "algorithm": algorithm,
        "optimizer": {"kind": "sgd", "lr": 0.02, "decay": 0.8},
        "data": {"name": "digits", "train_limit": train_limit},
        "run": {"epochs": epochs, "seed": 0, "batch_size": 4},
    }


def alignment(system, x, y) -> float:
    truth = oracle.gradient(system, x, y)
    return cosine_similarity(estimate_gradient(system, x, y, "centered", 0.01).gradient, truth)


def one_run(asymmetry: float, homeostasis: float, epochs: int, train_limit: int, hidden: list[int]) -> dict:
    raw = protocol(asymmetry, homeostasis, epochs, train_limit, hidden)
    proto = validate_raw(raw, "asymmetry benchmark")
    parts = build(proto)
    data = load_digits()
    from dataclasses import replace

    data = replace(data, x_train=data.x_train[:train_limit], y_train=data.y_train[:train_limit])
    xa, ya = data.x_test[:100], one_hot(data.y_test[:100], 10)
    trainer = Trainer(parts.system, parts.rule, data, TrainSettings(epochs=epochs, batch_size=4, log=None),
                      parts.shuffle_rng)
    history = [{"epoch": 0, "asymmetry": oracle.asymmetry(parts.system.read_params()),
                "alignment": alignment(parts.system, xa, ya)}]
    start = time.perf_counter()
    for _ in range(epochs):
        metrics = trainer.train_epoch()
        history.append({"epoch": metrics["epoch"], "test_accuracy": metrics["test_accuracy"],
                        "train_accuracy": metrics["train_accuracy"],
                        "asymmetry": oracle.asymmetry(parts.system.read_params()),
                        "alignment": alignment(parts.system, xa, ya)})
        print(asymmetry, homeostasis, history[-1], flush=True)
    return {"initial_asymmetry": asymmetry, "homeostasis": homeostasis, "hidden": hidden, "history": history,
            "final_test_accuracy": history[-1]["test_accuracy"], "final_alignment": history[-1]["alignment"],
            "mean_alignment": float(np.mean([h["alignment"] for h in history[1:]])),
            "final_asymmetry": history[-1]["asymmetry"], "wall_s": time.perf_counter() - start,
            "protocol": raw}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-limit", type=int, default=600)
    parser.add_argument("--asymmetry", type=float, action="append", default=None)
    parser.add_argument("--out", default="asymmetry.json", help="file name under benchmarks/results/")
    parser.add_argument("--hidden", type=int, action="append", default=None, help="hidden layer sizes ([32])")
    parser.add_argument("--homeostasis", type=float, default=10.0, help="λ of the homeostatic runs")
    args = parser.parse_args()
    levels = args.asymmetry or [0.0, 1.0, 2.0]
    runs = []
    for level in levels:
        for homeostasis in ([0.0] if level == 0 else [0.0, args.homeostasis]):  # λ 0 = plain EP
            runs.append(one_run(level, homeostasis, args.epochs, args.train_limit, args.hidden or [32]))
    path = write_json(args.out, {"runs": runs, "machine": machine(),
                                         "note": "wall times taken on a shared 2-core machine (noisy)"})
    print(f"wrote {path}")
    print(f"{'asymmetry':>9} {'homeostasis':>11} {'test acc':>8} {'alignment':>9} {'final asym':>10}")
    for r in runs:
        print(f"{r['initial_asymmetry']:>9.1f} {r['homeostasis']:>11g} {100 * r['final_test_accuracy']:>7.2f}% "
              f"{r['final_alignment']:>9.3f} {r['final_asymmetry']:>10.3f}")


if __name__ == "__main__":
    main()
