"""The run directory: resolved protocol, flushed metrics log, summary and atomic checkpoints.

Layout::

    protocol.toml     the fully resolved protocol (re-runnable as is)
    run.toml          instead of protocol.toml for a run started in Python: the training settings
    metrics.jsonl     one JSON line per epoch, flushed and fsynced as it is written
    checkpoint.npz    system snapshot + rule/trainer state, replaced atomically
    summary.json      final (or last known) figures
"""

from __future__ import annotations

import json
import os
import tomllib
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w

from .system import AeqpropError

PROTOCOL = "protocol.toml"
RUN_RECORD = "run.toml"
METRICS = "metrics.jsonl"
CHECKPOINT = "checkpoint.npz"
SUMMARY = "summary.json"


class RunDirError(AeqpropError):
    """The run directory cannot be created, or holds no run to resume."""


_ARRAY_PREFIX = "__array__."


def _extract_arrays(value: Any, store: dict[str, np.ndarray]) -> Any:
    """Replace every ndarray in a nested dict/list by ``{"__array__": key}``, storing it under that key."""
    if isinstance(value, np.ndarray):
        key = f"{_ARRAY_PREFIX}{sum(k.startswith(_ARRAY_PREFIX) for k in store)}"
        store[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        return {k: _extract_arrays(v, store) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_extract_arrays(v, store) for v in value]
    return value


def _insert_arrays(value: Any, stored: dict[str, np.ndarray]) -> Any:
    """Inverse of :func:`_extract_arrays`."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            return stored[value["__array__"]]
        return {k: _insert_arrays(v, stored) for k, v in value.items()}
    if isinstance(value, list):
        return [_insert_arrays(v, stored) for v in value]
    return value


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        write(fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


class RunDirectory:
    """One run's folder. Create it with :meth:`create` (new run) or :meth:`open` (resume)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls, path: str | Path, protocol: dict[str, Any] | None,
               record: dict[str, Any] | None = None) -> RunDirectory:
        """A new run: ``protocol`` (resolved) goes to protocol.toml; a run without one (Python) writes
        ``record`` to run.toml instead."""
        path = Path(path)
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunDirError(f"{path}: run directory exists and is not empty (use --resume {path} to continue it)")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"{path}: cannot create the run directory: {exc}") from None
        run = cls(path)
        name, content = (PROTOCOL, protocol) if protocol is not None else (RUN_RECORD, record or {})
        _atomic_write(path / name, lambda fh: fh.write(tomli_w.dumps(content).encode()))
        return run

    @classmethod
    def open(cls, path: str | Path) -> RunDirectory:
        path = Path(path)
        if not (path / PROTOCOL).is_file() and not (path / RUN_RECORD).is_file():
            raise RunDirError(f"{path}: not a run directory (no {PROTOCOL} or {RUN_RECORD})")
        return cls(path)

    def read_record(self) -> dict[str, Any]:
        """The settings a Python-started run recorded (empty for a protocol run)."""
        file = self.path / RUN_RECORD
        return tomllib.loads(file.read_text()) if file.is_file() else {}

    @property
    def protocol_path(self) -> Path:
        return self.path / PROTOCOL

    # --- metrics -----------------------------------------------------------------------------------------
    def append_metrics(self, record: dict[str, Any]) -> None:
        with open(self.path / METRICS, "a") as fh:
            fh.write(json.dumps(record) + "\n")
            fh.flush()
            os.fsync(fh.fileno())

    def read_metrics(self) -> list[dict[str, Any]]:
        file = self.path / METRICS
        if not file.is_file():
            return []
        return [json.loads(line) for line in file.read_text().splitlines() if line.strip()]

    def truncate_metrics(self, last_epoch: int) -> None:
        """Drop lines of epochs after ``last_epoch`` (written after the last checkpoint of a killed run)."""
        kept = [r for r in self.read_metrics() if r["epoch"] <= last_epoch]
        text = "".join(json.dumps(r) + "\n" for r in kept)
        _atomic_write(self.path / METRICS, lambda fh: fh.write(text.encode()))

    # --- checkpoints -------------------------------------------------------------------------------------
    def save_checkpoint(self, arrays: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        """Save system arrays and the JSON state; numpy arrays inside ``state`` (a rule's set points, say)
        go into the archive as ``__array__.N`` entries and come back in place from :meth:`load_checkpoint`."""
        payload = dict(arrays)
        payload["__state__"] = np.array(json.dumps(_extract_arrays(state, payload)))
        _atomic_write(self.path / CHECKPOINT, lambda fh: np.savez(fh, **payload))  # type: ignore[arg-type]

    def has_checkpoint(self) -> bool:
        return (self.path / CHECKPOINT).is_file()

    def load_checkpoint(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        file = self.path / CHECKPOINT
        if not file.is_file():
            raise RunDirError(f"{self.path}: no checkpoint to resume from (the run stopped before its first "
                              "checkpoint)")
        with np.load(file) as data:
            stored = {k: data[k] for k in data.files if k.startswith(_ARRAY_PREFIX)}
            arrays = {k: data[k] for k in data.files if k != "__state__" and not k.startswith(_ARRAY_PREFIX)}
            state = _insert_arrays(json.loads(str(data["__state__"])), stored)
        return arrays, state

    # --- summary -----------------------------------------------------------------------------------------
    def write_summary(self, summary: dict[str, Any]) -> None:
        _atomic_write(self.path / SUMMARY, lambda fh: fh.write((json.dumps(summary, indent=2) + "\n").encode()))
