"""Read a finished (or running) run directory for plots and reports, without building its system.

The device views need each parameter group's window and layer; a run records them in ``params.json`` when it
starts (:func:`write_param_specs`), so a report never has to reconnect to hardware to learn them. Older run
directories without that file fall back to the observed range of the checkpoint's values.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .rundir import CHECKPOINT, PROTOCOL, RUN_RECORD, SUMMARY, RunDirectory, RunDirError
from .system import SystemSpec

PARAMS = "params.json"

#: Per-epoch cost counters a metrics record may carry, with the label plots and reports give them.
COUNTERS = {
    "sweeps_per_relaxation": "sweeps per relaxation",
    "reads": "reads per measurement",
    "reads_final": "reads (adaptive, end of epoch)",
    "pulses_per_step": "pulses per step",
    "verify_rounds_per_step": "write-verify rounds per step",
    "homeostasis_iterations_per_batch": "homeostasis iterations per batch",
    "samples_per_s": "samples per second",
}


def write_param_specs(path: Path, spec: SystemSpec) -> None:
    """Record every parameter group's shape, window, unit, layer and role (read by the device views)."""
    table = {name: {"shape": list(p.shape), "bounds": list(p.bounds), "unit": p.unit, "layer": p.layer,
                    "role": p.role} for name, p in spec.params.items()}
    (path / PARAMS).write_text(json.dumps({"description": spec.description, "params": table}, indent=1) + "\n")


@dataclass
class Device:
    """One parameter group as a report shows it: values from the checkpoint and the window they live in."""

    name: str
    values: np.ndarray
    low: float | None
    high: float | None
    unit: str = ""
    layer: int = 1
    role: str = "weight"

    def at_edges(self, margin: float = 0.01) -> tuple[float, float]:
        """Fractions of devices within ``margin`` × window width of the low and the high edge."""
        if self.low is None or self.high is None or self.high <= self.low or self.values.size == 0:
            return float("nan"), float("nan")
        tol = margin * (self.high - self.low)
        v = self.values.ravel()
        return float(np.mean(v <= self.low + tol)), float(np.mean(v >= self.high - tol))


@dataclass
class RunView:
    """Everything a plot or report reads from one run directory."""

    path: Path
    records: list[dict[str, Any]]
    summary: dict[str, Any]
    protocol: dict[str, Any]
    protocol_text: str
    description: str = ""
    devices: list[Device] = field(default_factory=list)
    checkpoint_epoch: int | None = None

    @property
    def name(self) -> str:
        return self.path.name

    def counters(self) -> dict[str, list[float | None]]:
        """Per-epoch cost counters present in the records (name → value per epoch)."""
        records = self.records
        return {k: [r.get(k) for r in records] for k in COUNTERS if any(r.get(k) is not None for r in records)}


def load_devices(path: Path) -> tuple[list[Device], int | None, str]:
    """Parameter groups from the checkpoint (with windows from ``params.json`` when present)."""
    file = path / CHECKPOINT
    if not file.is_file():
        return [], None, ""
    arrays, state = RunDirectory(path).load_checkpoint()
    specs: dict[str, Any] = {}
    description = ""
    if (path / PARAMS).is_file():
        meta = json.loads((path / PARAMS).read_text())
        specs, description = meta["params"], meta.get("description", "")
    devices = []
    for key, value in arrays.items():
        if not key.startswith("param."):
            continue
        name = key.removeprefix("param.")
        spec = specs.get(name, {})
        low, high = spec.get("bounds", [None, None])
        devices.append(Device(name, np.asarray(value, dtype=float), low, high, spec.get("unit", ""),
                              int(spec.get("layer", 1)), spec.get("role", "weight")))
    devices.sort(key=lambda d: (d.layer, d.role != "weight", d.name))
    return devices, int(state.get("epoch", 0)), description


def expand(paths: list[str]) -> list[Path]:
    """Run directories as given, a sweep folder (``sweep.json``) standing for its points' run directories."""
    out: list[Path] = []
    for text in paths:
        path = Path(text)
        if (path / "sweep.json").is_file() and not (path / PROTOCOL).is_file():
            out += sorted(p for p in path.iterdir() if (p / PROTOCOL).is_file() or (p / RUN_RECORD).is_file())
        else:
            out.append(path)
    return out


def open_run(path: str | Path) -> RunView:
    """Read one run directory; a one-line :class:`RunDirError` if it is not one."""
    run = RunDirectory.open(path)
    file = run.path / PROTOCOL if (run.path / PROTOCOL).is_file() else run.path / RUN_RECORD  # RUN_RECORD: Python
    text = file.read_text()
    try:
        protocol = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RunDirError(f"{file}: invalid TOML: {exc}") from None
    records = run.read_metrics()
    summary = json.loads((run.path / SUMMARY).read_text()) if (run.path / SUMMARY).is_file() else _so_far(records)
    devices, epoch, description = load_devices(run.path)
    return RunView(run.path, records, summary, protocol, text, description, devices, epoch)


def _so_far(records: list[dict[str, Any]]) -> dict[str, Any]:
    """A summary from the metrics log, for a run still going (or killed) that has no summary.json yet."""
    if not records:
        return {"status": "no epoch finished yet"}
    last = records[-1]
    train_s = sum(r.get("train_s", 0.0) for r in records)
    return {
        "status": "running, or stopped without a summary", "epochs": last["epoch"],
        "test_accuracy": last.get("test_accuracy"), "train_accuracy": last.get("train_accuracy"),
        "train_loss": last.get("train_loss"),
        "best_test_accuracy": max((r["test_accuracy"] for r in records if "test_accuracy" in r), default=None),
        "wall_s": sum(r.get("wall_s", 0.0) for r in records),
        "samples_per_s": (sum(r["samples_per_s"] * r["train_s"] for r in records if "train_s" in r) / train_s
                          if train_s else None),
    }
