"""Speed of aeqprop's resistive solver against ngspice on the same networks, per equilibrium and per training sample.

For each size (from tens to thousands of nodes) the same network (same seed) is built twice: as
``kind = "resistive"`` (exact block coordinate descent, numpy) and as ``kind = "spice"`` (ngspice in batch mode).
The two free equilibria are cross-checked first. Then, all in one run:

* ngspice, its fastest mode: ONE ``.dc`` sweep over ``--sweep`` inputs (netlist written once, matrix set up once,
  each point warm-started from the previous one). Reported per equilibrium amortised (whole run / inputs: the
  headline) and marginal ((sweep run - one-input run) / (inputs - 1), setup excluded; a difference of two
  noisy timings, meaningful only where the sweep dominates, i.e. on large networks). Per training sample: one
  centered-EP step (3 sweeps + measurements + programming) on a batch of ``--sweep`` inputs, / the batch.
* aeqprop's solver at batch 1 and batch 64: per equilibrium (clamp new inputs, relax, warm-started from the
  previous batch as in training) and per training sample (one centered-EP step), medians over repeats.

Ratios are ngspice time / aeqprop time per sample, in CPU time (the ngspice process's user + system time, this
process's time for the solver): on a loaded machine a long ngspice run gets a fraction of a core while short
solver calls do not, which inflates wall-clock ratios. Wall-clock ratios (``*_wall``) and the load average are
recorded too; on a quiet machine the two agree. Both sides use ONE core:
ngspice is single-threaded, and the BLAS is pinned to one thread (``--threads`` changes it) before numpy loads,
which also keeps a loaded machine from stalling OpenBLAS's spinning worker threads.

    python benchmarks/spice_speed.py [--sweep 64] [--sizes 4x4x2,16x16x4,...] [--output spice_speed.json]
"""

from __future__ import annotations

import argparse
import os
import sys

if __name__ == "__main__":  # before numpy is imported: one BLAS thread, as ngspice uses one core
    _threads = sys.argv[sys.argv.index("--threads") + 1] if "--threads" in sys.argv else "1"
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_var] = _threads
import resource
import statistics
import subprocess
import time
from collections.abc import Callable

import numpy as np
from _common import RESULTS, machine, write_json
from aeqprop.simulators.resistive import ResistiveConfig, oracle
from aeqprop.simulators.spice import SpiceConfig, find_ngspice
from aeqprop.simulators.spice.crossval import diode_offset_bound, worst_mismatch

from aeqprop.estimators import estimate_gradient
from aeqprop.optim import SGD

DEFAULT_SIZES = "4x4x2,16x16x4,64x64x10,196x50x10,784x100x10"
BETA = 0.1
LR = 0.006


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _timed(fn: Callable[[], object]) -> tuple[float, float, float]:
    """(wall s, own CPU s, child-process CPU s) of one call."""
    wall, cpu, child = time.perf_counter(), time.process_time(), _children_cpu()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu, _children_cpu() - child


def _relax(net, x: np.ndarray) -> None:
    net.clamp(x)
    net.nudge(0.0)
    net.relax()


def _ep_step(net, optimizer: SGD, x: np.ndarray, y: np.ndarray) -> None:
    est = estimate_gradient(net, x, y, "centered", BETA)
    net.program(optimizer.step(est.gradient))


def _ours(settings: dict, x_all: np.ndarray, y_all: np.ndarray, batch: int, repeats: int) -> dict:
    net = ResistiveConfig(**settings).build(np.random.default_rng(0))
    optimizer = SGD(net.spec.params, LR)
    rng = np.random.default_rng(1)
    batches = [rng.choice(x_all.shape[0], batch, replace=False) for _ in range(repeats + 2)]
    _relax(net, x_all[batches[0]])  # warm-up (first clamp allocates the state)
    relax = [_timed(lambda idx=idx: _relax(net, x_all[idx])) for idx in batches[1:]]
    train = [_timed(lambda idx=idx: _ep_step(net, optimizer, x_all[idx], y_all[idx])) for idx in batches[1:]]
    return {
        "batch": batch,
        "equilibrium_s_per_sample": statistics.median(t[0] for t in relax) / batch,
        "equilibrium_cpu_s_per_sample": statistics.median(t[1] for t in relax) / batch,
        "train_s_per_sample": statistics.median(t[0] for t in train) / batch,
        "train_cpu_s_per_sample": statistics.median(t[1] for t in train) / batch,
        "repeats": repeats,
    }


def _ngspice(settings: dict, x_all: np.ndarray, y_all: np.ndarray, sweep: int) -> dict:
    net = SpiceConfig(**settings).build(np.random.default_rng(0))
    one = _timed(lambda: _relax(net, x_all[:1]))
    many = _timed(lambda: _relax(net, x_all[:sweep]))
    iterations = net.iterations
    optimizer = SGD(net.spec.params, LR)
    train = _timed(lambda: _ep_step(net, optimizer, x_all[:sweep], y_all[:sweep]))
    return {
        "sweep_points": sweep,
        "op_s": one[0],
        "sweep_s": many[0],
        "equilibrium_s_amortised": many[0] / sweep,
        "equilibrium_s_marginal": (many[0] - one[0]) / (sweep - 1),
        "equilibrium_cpu_s_amortised": (many[1] + many[2]) / sweep,
        "equilibrium_cpu_s_marginal": (many[1] + many[2] - one[1] - one[2]) / (sweep - 1),
        "newton_iterations_per_point": iterations / (sweep + 1),
        "train_s_per_sample": train[0] / sweep,
        "train_cpu_s_per_sample": (train[1] + train[2]) / sweep,
    }


def _agreement(settings: dict, x: np.ndarray) -> dict:
    spice = SpiceConfig(**settings).build(np.random.default_rng(0))
    resistive = ResistiveConfig(**settings).build(np.random.default_rng(0))
    _relax(spice, x)
    v_in, layers = oracle.equilibrium(resistive, x)
    worst = worst_mismatch(layers, spice.node_voltages())
    bound = diode_offset_bound(resistive.read_params(), v_in, layers, spice.diode.g_on_s)
    return {"max_abs_difference_v": worst.difference_v, "diode_offset_bound_v": bound, "worst_node": worst.describe()}


def _ngspice_version() -> str:
    out = subprocess.run([find_ngspice(), "-v"], capture_output=True, text=True, check=False).stdout
    return next((line.strip("* ").strip() for line in out.splitlines() if "ngspice-" in line), "unknown")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default=DEFAULT_SIZES, help="comma-separated inputs x hidden x outputs")
    parser.add_argument("--sweep", type=int, default=64, help="inputs in ngspice's .dc sweep (and its EP batch)")
    parser.add_argument("--repeats", type=int, default=20, help="repeats of each aeqprop measurement (median)")
    parser.add_argument("--threads", default="1", help="BLAS threads of aeqprop's solver (default: one core)")
    parser.add_argument("--output", default="spice_speed.json")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    rows = []
    load_before = os.getloadavg()
    for text in args.sizes.split(","):
        n_in, n_hidden, n_out = (int(v) for v in text.split("x"))
        settings = {"inputs": n_in, "hidden": [n_hidden], "outputs": n_out, "input_gain": 4.0}
        x_all = rng.random((max(256, args.sweep), n_in))
        y_all = np.eye(n_out)[rng.integers(0, n_out, x_all.shape[0])]
        nodes = 2 * n_in + n_hidden + n_out
        row = {"size": f"{2 * n_in}-{n_hidden}-{n_out}", "nodes": nodes,
               "conductances": 2 * n_in * n_hidden + n_hidden * n_out}
        row["agreement"] = _agreement(settings, x_all[:8])
        row["ngspice"] = _ngspice(settings, x_all, y_all, args.sweep)
        row["aeqprop"] = [_ours(settings, x_all, y_all, batch, args.repeats) for batch in (1, 64)]
        ng = row["ngspice"]
        row["speedup"] = {
            f"batch_{o['batch']}": {
                "equilibrium": ng["equilibrium_cpu_s_amortised"] / o["equilibrium_cpu_s_per_sample"],
                "train_sample": ng["train_cpu_s_per_sample"] / o["train_cpu_s_per_sample"],
                "equilibrium_vs_marginal": ng["equilibrium_cpu_s_marginal"] / o["equilibrium_cpu_s_per_sample"],
                "equilibrium_wall": ng["equilibrium_s_amortised"] / o["equilibrium_s_per_sample"],
                "train_sample_wall": ng["train_s_per_sample"] / o["train_s_per_sample"],
            }
            for o in row["aeqprop"]
        }
        rows.append(row)
        s1, s64 = row["speedup"]["batch_1"], row["speedup"]["batch_64"]
        print(f"{row['size']:>14} ({nodes} nodes): ngspice {1e3 * ng['equilibrium_cpu_s_amortised']:.2f} ms/eq "
              f"(wall {1e3 * ng['equilibrium_s_amortised']:.2f}), {1e3 * ng['train_cpu_s_per_sample']:.1f} ms/train "
              f"sample | CPU-time speed-up eq {s1['equilibrium']:.0f}x (b1) {s64['equilibrium']:.0f}x (b64), "
              f"train {s1['train_sample']:.0f}x (b1) {s64['train_sample']:.0f}x (b64) | "
              f"agree {row['agreement']['max_abs_difference_v']:.1e} V", flush=True)
    result = {
        "what": "time per sample of aeqprop's resistive solver vs ngspice (one .dc sweep) on the same networks",
        "machine": machine(),
        "ngspice": _ngspice_version(),
        "conditions": {
            "load_average_before": load_before, "load_average_after": os.getloadavg(),
            "blas_threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "note": "headline ratios are CPU time (insensitive to other load); *_wall are wall-clock",
        },
        "settings": {"sweep": args.sweep, "repeats": args.repeats, "beta": BETA, "input_gain": 4.0,
                     "diode": "behavioural, g_on = 1e12 S",
                     "aeqprop_tol_v": ResistiveConfig.model_fields["tol_v"].default},
        "sizes": rows,
    }
    path = write_json(args.output, result)
    _plot(rows, RESULTS / args.output.replace(".json", ".png"))
    print(f"wrote {path}")
    return 0


def _plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nodes = [r["nodes"] for r in rows]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    ax1.loglog(nodes, [r["ngspice"]["equilibrium_cpu_s_amortised"] for r in rows], "o-", label="ngspice, one .dc sweep")
    for i, style in ((0, "s-"), (1, "^-")):
        ax1.loglog(nodes, [r["aeqprop"][i]["equilibrium_cpu_s_per_sample"] for r in rows], style,
                   label=f"aeqprop solver, batch {rows[0]['aeqprop'][i]['batch']}")
    ax1.set_xlabel("nodes")
    ax1.set_ylabel("CPU seconds per equilibrium per sample")
    ax1.set_title("time per equilibrium")
    ax1.legend(fontsize=8)
    for key, style in (("batch_1", "s-"), ("batch_64", "^-")):
        ax2.loglog(nodes, [r["speedup"][key]["equilibrium"] for r in rows], style, label=f"equilibrium, {key}")
        ax2.loglog(nodes, [r["speedup"][key]["train_sample"] for r in rows], style.replace("-", "--"),
                   label=f"training sample, {key}")
    ax2.axhline(200, color="grey", lw=0.8, ls=":")
    ax2.axhline(2000, color="grey", lw=0.8, ls=":")
    ax2.set_xlabel("nodes")
    ax2.set_ylabel("ngspice CPU time / aeqprop CPU time")
    ax2.set_title("speed-up over ngspice")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
