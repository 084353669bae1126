"""``aeqprop plot RUN_DIR [RUN_DIR ...]``: learning curves (overlaid), cost counters and device views as PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from aeqprop.plotting import (
    counters_figure,
    device_histograms_figure,
    device_maps_figure,
    learning_curves_figure,
    save,
)
from aeqprop.rundir import RunDirError
from aeqprop.runview import expand, open_run

HELP = "plot runs: learning curves (several runs overlaid), per-epoch costs, conductance histograms and maps"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR",
                        help="run directories written by 'aeqprop run' (a sweep folder stands for all its points)")
    parser.add_argument("-o", "--output", help="learning-curve PNG path (default OUT_DIR/learning_curve.png)")
    parser.add_argument("--out-dir", help="folder for the PNGs (default: the run directory, or ./plots for several)")
    parser.add_argument("--edge", type=float, default=0.01, metavar="FRACTION",
                        help="a device is 'at an edge' within this fraction of its window (default 0.01)")


def run(args: argparse.Namespace) -> int:
    views = [open_run(p) for p in expand(args.run_dirs)]
    for view in views:
        if not view.records:
            raise RunDirError(f"{view.path}: metrics.jsonl has no epochs yet")
    if not 0 < args.edge < 0.5:
        raise RunDirError(f"--edge {args.edge}: must lie between 0 and 0.5")
    out_dir = Path(args.out_dir) if args.out_dir else (
        Path(args.run_dirs[0]) if len(args.run_dirs) == 1 else Path("plots"))
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    curve = Path(args.output) if args.output else out_dir / "learning_curve.png"
    title = views[0].name if len(views) == 1 else f"{len(views)} runs"
    save(learning_curves_figure([(v.name, v.records) for v in views], title), curve, dpi=120)
    written.append(curve)
    fig = counters_figure([(v.name, v.counters()) for v in views])
    if fig is not None:
        save(fig, out_dir / "costs.png")
        written.append(out_dir / "costs.png")
    for view in views:
        prefix = "" if len(views) == 1 else f"{view.name}-"
        for suffix, fig in (("devices", device_histograms_figure(view.devices, args.edge)),
                            ("conductance_maps", device_maps_figure(view.devices))):
            if fig is not None:
                path = out_dir / f"{prefix}{suffix}.png"
                save(fig, path)
                written.append(path)
    for path in written:
        print(path)
    return 0
