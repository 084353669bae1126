"""Live experiment logging to TensorBoard and MLflow (optional extras), fed by the trainer's hooks.

Why here and not in the trainer: the trainer only hands out numbers (per batch and per epoch); what is
logged where, and how a resumed run continues the same series, is this module's job.

Series and steps:

* per-epoch scalars (every number the epoch's metrics record carries), step = epoch;
* per-batch scalars averaged over ``log_every`` batches, step = global batch index (1-based);
* per-layer histograms of the parameters and of their change over the epoch (TensorBoard only), step = epoch;
* the resolved protocol: MLflow run parameters (flattened ``section.key``), TensorBoard text.

Resuming: TensorBoard writers reopen with ``purge_step`` set just past the checkpoint, so what a killed run
logged after its last checkpoint is hidden by TensorBoard's own readers and the resumed values replace it.
MLflow cannot purge metric points; the resumed run reattaches to the same MLflow run (its id is kept in the
run directory) and skips the steps already logged there (an exact resume recomputes the same values).
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from .system import AeqpropError, PhysicalSystem

#: Optional extra → the module it needs (checked before anything runs) and the install hint.
EXTRAS = {"tensorboard": ("tensorboardX",), "mlflow": ("mlflow", "sqlalchemy", "alembic")}
TB_DIR = "tensorboard"
MLFLOW_DB = "mlflow.db"
MLFLOW_RUN = "mlflow_run.json"


class TrackingError(AeqpropError):
    """A logger could not be set up (e.g. its optional package is missing)."""


def missing_extra(extra: str) -> str | None:
    """The install hint if the package behind ``extra`` cannot be imported, else None (nothing is imported)."""
    for module in EXTRAS[extra]:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: a module blocked as sys.modules[name] = None
            found = False
        if not found:
            return f"needs the optional package {module!r}: pip install 'aeqprop[{extra}]'"
    return None


def flatten(tree: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """``{"run": {"epochs": 3}}`` → ``{"run.epochs": "3"}`` (lists as JSON), for run-parameter tables."""
    flat: dict[str, str] = {}
    for key, value in tree.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten(value, name))
        else:
            flat[name] = value if isinstance(value, str) else json.dumps(value)
    return flat


def scalars(record: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a metrics record (booleans, None, strings and the epoch itself left out)."""
    out = {}
    for key, value in record.items():
        if key == "epoch" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if math.isfinite(value):
            out[key] = float(value)
    return out


def weights(system: PhysicalSystem) -> dict[str, np.ndarray]:
    """The system's parameters by group name, from its snapshot (``param.<name>`` entries)."""
    snap = system.snapshot()
    return {name: np.asarray(snap[f"param.{name}"], dtype=float) for name in system.spec.params
            if f"param.{name}" in snap}


def edge_fractions(system: PhysicalSystem, values: dict[str, np.ndarray], margin: float = 0.01) -> dict[str, float]:
    """``<group>_at_low_edge`` / ``_at_high_edge``: fractions of devices within ``margin`` of a bounded window."""
    from .runview import Device

    out = {}
    for name, value in values.items():
        spec = system.spec.params[name]
        low, high = Device(name, value, *spec.bounds).at_edges(margin)
        if not math.isnan(low):
            out[f"{name}_at_low_edge"], out[f"{name}_at_high_edge"] = low, high
    return out


class TensorBoardSink:
    """Event files under ``<run>/tensorboard/epoch`` and ``<run>/tensorboard/batch`` (two step axes)."""

    NAME = "TensorBoard"

    def __init__(self, run_path: Path, resume_epoch: int | None, resume_batch: int | None) -> None:
        from tensorboardX import SummaryWriter

        root = run_path / TB_DIR
        self.epoch = SummaryWriter(str(root / "epoch"), purge_step=None if resume_epoch is None else resume_epoch + 1,
                                   flush_secs=10)
        self.batch = SummaryWriter(str(root / "batch"), purge_step=None if resume_batch is None else resume_batch + 1,
                                   flush_secs=10)

    def params(self, flat: dict[str, str], toml_text: str) -> None:
        self.epoch.add_text("protocol", "```toml\n" + toml_text + "\n```", global_step=0)

    def epoch_scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.epoch.add_scalar(f"epoch/{key}", value, step)
        self.epoch.flush()

    def batch_scalars(self, step: int, values: dict[str, float]) -> None:
        for key, value in values.items():
            self.batch.add_scalar(f"batch/{key}", value, step)

    def histograms(self, step: int, params: dict[str, np.ndarray], deltas: dict[str, np.ndarray]) -> None:
        for name, value in params.items():
            self.epoch.add_histogram(f"params/{name}", value.ravel(), step)
        for name, value in deltas.items():
            self.epoch.add_histogram(f"updates/{name}", value.ravel(), step)
        self.epoch.flush()

    def flush(self) -> None:
        self.batch.flush()

    def close(self) -> None:
        self.epoch.close()
        self.batch.close()


class MlflowSink:
    """One MLflow run per run directory; the default store is a SQLite file inside the run directory."""

    NAME = "MLflow"

    def __init__(self, run_path: Path, uri: str | None, name: str, experiment: str = "aeqprop") -> None:
        from mlflow.tracking import MlflowClient

        for noisy in ("mlflow", "alembic"):  # after the import: mlflow sets its loggers up when imported
            logging.getLogger(noisy).setLevel(logging.WARNING)

        record = run_path / MLFLOW_RUN
        saved = json.loads(record.read_text()) if record.is_file() else None
        self.uri = saved["tracking_uri"] if saved else (uri or f"sqlite:///{(run_path / MLFLOW_DB).resolve()}")
        self.client = MlflowClient(tracking_uri=self.uri)
        self.done: dict[str, int] = {}  # highest step already logged per key (resumed runs)
        self.new = saved is None
        if saved:
            self.run_id = saved["run_id"]
            run = self.client.get_run(self.run_id)
            for key in run.data.metrics:
                history = self.client.get_metric_history(self.run_id, key)
                self.done[key] = max((m.step for m in history), default=-1)
            self.client.update_run(self.run_id, status="RUNNING")
        else:
            exp = self.client.get_experiment_by_name(experiment)
            if exp is not None:
                exp_id = exp.experiment_id
            else:
                artifacts = (run_path / "mlartifacts").resolve().as_uri() if uri is None else None
                exp_id = self.client.create_experiment(experiment, artifact_location=artifacts)
            self.run_id = self.client.create_run(exp_id, run_name=name).info.run_id
            record.write_text(json.dumps({"tracking_uri": self.uri, "run_id": self.run_id}) + "\n")

    def params(self, flat: dict[str, str], toml_text: str) -> None:
        if not self.new:
            return  # MLflow refuses to change a logged parameter; the run keeps its original protocol
        from mlflow.entities import Param

        items = [Param(k[:250], v[:6000]) for k, v in flat.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def _log(self, prefix: str, step: int, values: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        metrics = [Metric(f"{prefix}{k}", v, now, step) for k, v in values.items()
                   if step > self.done.get(f"{prefix}{k}", -1)]
        if metrics:
            self.client.log_batch(self.run_id, metrics=metrics)

    def epoch_scalars(self, step: int, values: dict[str, float]) -> None:
        self._log("", step, values)

    def batch_scalars(self, step: int, values: dict[str, float]) -> None:
        self._log("batch_", step, values)

    def histograms(self, step: int, params: dict[str, np.ndarray], deltas: dict[str, np.ndarray]) -> None:
        pass  # MLflow has no histograms; TensorBoard carries them

    def flush(self) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        self.client.set_terminated(self.run_id, status=status)


class Tracker:
    """Feeds the enabled sinks from the trainer's batch hook and epoch callback.

    ``log_every`` batches are averaged into one point of the batch series (0: no batch series).
    ``histograms`` reads the parameters once per epoch (one extra read of every device on hardware).
    """

    def __init__(self, sinks: list[Any], system: PhysicalSystem, log_every: int = 0, histograms: bool = True) -> None:
        self.sinks = sinks
        self.system = system
        self.log_every = log_every
        self.histograms = histograms
        self._window: dict[str, float] = {}
        self._count = 0
        self._last = weights(system) if histograms and sinks else {}

    @classmethod
    def open(cls, run_path: Path, run: Any, system: PhysicalSystem, name: str,
             resume: tuple[int, int] | None = None) -> Tracker:
        """Start the sinks ``run`` (the protocol's ``[run]`` section) asks for; ``resume`` = (epoch, batch)
        of the checkpoint a resumed run continues from."""
        sinks: list[Any] = []
        for extra, wanted in (("tensorboard", run.tensorboard), ("mlflow", run.mlflow)):
            hint = missing_extra(extra) if wanted else None
            if hint:
                raise TrackingError(f"run.{extra}: {hint}")
        opening = ""
        try:
            if run.tensorboard:
                opening = "tensorboard"
                sinks.append(TensorBoardSink(run_path, *(resume or (None, None))))
            if run.mlflow:
                opening = "mlflow"
                sinks.append(MlflowSink(run_path, run.mlflow if isinstance(run.mlflow, str) else None, name))
        except Exception as exc:
            for sink in sinks:
                sink.close()
            first = f"{type(exc).__name__}: {exc}".splitlines()[0]
            raise TrackingError(f"run.{opening}: cannot open the logger: {first}") from exc
        return cls(sinks, system, run.log_every, run.histograms)

    def _each(self, call: Callable[[Any], object]) -> None:
        """Call every sink; one that fails is dropped with a one-line warning and training goes on (a
        tracking server that goes away must not stop an hours-long hardware run)."""
        for sink in list(self.sinks):
            try:
                call(sink)
            except Exception as exc:
                self.sinks.remove(sink)
                first = f"{type(exc).__name__}: {exc}".splitlines()[0]
                print(f"aeqprop: warning: {sink.NAME} logging stopped ({first}); training goes on", file=sys.stderr)

    def log_protocol(self, protocol: Mapping[str, Any], toml_text: str) -> None:
        flat = flatten(protocol)
        self._each(lambda sink: sink.params(flat, toml_text))

    def on_batch(self, step: int, values: Mapping[str, float]) -> None:
        """Trainer batch hook: accumulate, and every ``log_every`` batches log the window's mean."""
        if not self.log_every or not self.sinks:
            return
        for key, value in values.items():
            self._window[key] = self._window.get(key, 0.0) + float(value)
        self._count += 1
        if step % self.log_every == 0:  # global steps: a resumed run logs at the same steps
            mean = {k: v / self._count for k, v in self._window.items()}
            self._each(lambda sink: (sink.batch_scalars(step, mean), sink.flush()))
            self._window, self._count = {}, 0

    def on_epoch(self, metrics: dict[str, Any]) -> bool:
        """Trainer epoch callback: log the record (and histograms); never asks the run to stop."""
        if not self.sinks:
            return False
        step = int(metrics["epoch"])
        values = scalars(metrics)
        self._each(lambda sink: sink.epoch_scalars(step, values))
        if self.histograms and self.sinks:
            now = weights(self.system)
            deltas = {k: now[k] - self._last[k] for k in now if k in self._last}
            self._each(lambda sink: sink.histograms(step, now, deltas))
            edges = edge_fractions(self.system, now)
            if edges:
                self._each(lambda sink: sink.epoch_scalars(step, edges))
            self._last = now
        self._window, self._count = {}, 0  # a window never spans two epochs
        return False

    def close(self, status: str = "completed") -> None:
        mlflow_status = {"completed": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self._each(lambda sink: sink.close(mlflow_status) if isinstance(sink, MlflowSink) else sink.close())


def watch(trainer: Any, run_path: Path, protocol: Any, resumed: bool) -> Tracker:
    """Open the loggers ``protocol.run`` asks for and hook them into ``trainer`` (a :class:`Trainer` with its
    state loaded); the caller closes the returned tracker with the run's status."""
    n_batches = -(-trainer.data.x_train.shape[0] // trainer.settings.batch_size)
    epoch = trainer.state.epoch
    tracker = Tracker.open(run_path, protocol.run, trainer.system, run_path.name,
                           (epoch, epoch * n_batches) if resumed else None)
    tracker.log_protocol(protocol.model_dump(mode="json", exclude_none=True), (run_path / "protocol.toml").read_text())
    trainer.callback, trainer.batch_callback = tracker.on_epoch, tracker.on_batch
    return tracker
