"""Is float32 accurate enough for a DRN protocol? Compare it with a float64 reference on the same parameters.

For the protocol's parameters (its initial draw, or a checkpoint of a run with ``--checkpoint``) it measures,
against float64 solved to 1e-9 V:
- the free-equilibrium voltages (largest difference, volts) on test batches;
- the centered-EP gradient estimate on training batches (relative L2 error and cosine per parameter);
- test predictions (fraction of identical argmax, and both test errors).
It does the same for float64 at the protocol's own tolerance, to separate rounding from tolerance.

    python benchmarks/mnist_drn_float32.py --protocol protocols/mnist-drn1h.toml --checkpoint runs/drn1h
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

import numpy as np
from _common import ROOT, default_data_root, machine, write_json

from aeqprop.data import load_dataset, one_hot
from aeqprop.estimators import estimate_gradient, free_outputs
from aeqprop.protocol import build, load_protocol
from aeqprop.rundir import RunDirectory


def system_for(protocol_path: str, overrides: list[str], params: dict[str, np.ndarray] | None):
    protocol = load_protocol(protocol_path, overrides)
    system = build(protocol).system
    if params is not None:
        system.restore({f"param.{k}": v for k, v in params.items()})
    return protocol, system


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--protocol", default=str(ROOT / "protocols" / "mnist-drn1h.toml"))
    parser.add_argument("--checkpoint", help="run directory whose checkpoint supplies the parameters")
    parser.add_argument("--batches", type=int, default=20, help="training batches for the gradient comparison")
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    params = None
    epoch = 0
    if args.checkpoint:
        arrays, state = RunDirectory.open(args.checkpoint).load_checkpoint()
        params = {k.removeprefix("param."): v for k, v in arrays.items() if k.startswith("param.")}
        epoch = state["epoch"]
    base, _ = system_for(args.protocol, [], params)
    tol = base.system.tol_v
    variants = {
        "float32": ["system.dtype=float32"],
        f"float64 tol {tol:g}": ["system.dtype=float64"],
        "reference": ["system.dtype=float64", "system.tol_v=1e-9", "system.max_sweeps=100000"],
    }
    systems = {name: system_for(args.protocol, o, params)[1] for name, o in variants.items()}
    data = load_dataset(base.data.name, base.data.root or default_data_root())
    targets = one_hot(data.y_train, data.n_classes, base.data.target_low, base.data.target_high)
    bs = base.run.batch_size
    rng = np.random.default_rng(0)
    result: dict[str, Any] = {"protocol": args.protocol, "checkpoint": args.checkpoint, "epoch": epoch,
                              "machine": machine(), "variants": {}}
    ref = systems["reference"]
    # gradients
    grads: dict[str, list[dict[str, np.ndarray]]] = {name: [] for name in systems}
    for _ in range(args.batches):
        idx = rng.choice(data.x_train.shape[0], bs, replace=False)
        for name, system in systems.items():
            est = estimate_gradient(system, data.x_train[idx], targets[idx], base.algorithm.estimator,
                                    base.algorithm.beta)
            grads[name].append({k: v.astype(np.float64) for k, v in est.gradient.items()})
    # test predictions and equilibria
    eb = base.run.eval_batch_size
    preds = {name: [] for name in systems}
    worst_v = {name: 0.0 for name in systems}
    for s in range(0, data.x_test.shape[0], eb):
        x = data.x_test[s : s + eb]
        ref_out, _ = free_outputs(ref, x)
        ref_layers = [layer.astype(np.float64) for layer in ref._layers]
        preds["reference"].append(np.argmax(ref_out, axis=1))
        for name, system in systems.items():
            if name == "reference":
                continue
            out, _ = free_outputs(system, x)
            preds[name].append(np.argmax(out, axis=1))
            diff = max(float(np.abs(a.astype(np.float64) - b).max()) for a, b in zip(system._layers, ref_layers))
            worst_v[name] = max(worst_v[name], diff)
    ref_pred = np.concatenate(preds["reference"])
    for name in systems:
        pred = np.concatenate(preds[name])
        row: dict[str, Any] = {"test_error": float(np.mean(pred != data.y_test)),
                               "same_prediction": float(np.mean(pred == ref_pred))}
        if name != "reference":
            row["max_voltage_difference_v"] = worst_v[name]
            per = {}
            for key in grads[name][0]:
                a = np.stack([g[key] for g in grads[name]])
                b = np.stack([g[key] for g in grads["reference"]])
                per[key] = {"relative_error": float(np.linalg.norm(a - b) / np.linalg.norm(b)),
                            "cosine": float(np.sum(a * b) / (np.linalg.norm(a) * np.linalg.norm(b)))}
            row["gradient"] = per
        result["variants"][name] = row
        print(name, {k: v for k, v in row.items() if k != "gradient"})
        for key, v in row.get("gradient", {}).items():
            print(f"   {key}: relative error {v['relative_error']:.2e}, cosine {v['cosine']:.8f}")
    stem = args.protocol.rsplit("/", 1)[-1].removesuffix(".toml")
    write_json(args.output or f"float32_{stem}.json", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
