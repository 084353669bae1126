"""Helpers shared by the benchmark scripts: locating data, machine facts, writing results."""

from __future__ import annotations

import json
import os
import platform
import resource
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def default_data_root() -> str:
    """$AEQPROP_DATA, else the offline data-set folder beside the checkout."""
    return os.environ.get("AEQPROP_DATA") or str(ROOT.parent / "shared" / "datasets")


def machine() -> dict[str, Any]:
    import numpy

    return {
        "python": platform.python_version(), "numpy": numpy.__version__, "cpus": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_json(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path
