"""The Python API: build a system, a rule and data in code (or load them from a protocol file) and train.

One path for everyone: ``aeqprop run``, every point of ``aeqprop sweep`` and a notebook all go through
:class:`Experiment`, so a run started in Python writes the same run directory (metrics, checkpoints, summary)
and resumes exactly as one started from the command line. See docs/python-api.md.

Seeds: :func:`make_system`, :func:`make_rule` and :func:`train` draw from the same three streams a protocol
with ``run.seed = seed`` uses (system, rule, shuffling), so code and protocol give bit-identical runs.
"""

from __future__ import annotations

import platform
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .data import DataConfig, DataError, Dataset, check_dataset, load_data
from .optim import SGD
from .protocol import Protocol, build, load_protocol, read_raw, to_dict, validate_raw
from .registry import rule_settings, system_settings
from .rules import LearningRule
from .rundir import RUN_RECORD, RunDirectory, RunDirError
from .runview import write_param_specs
from .settings import ProtocolError, RuleSettings, SystemSettings
from .system import AeqpropError, LimitViolation, PhysicalSystem
from .tracking import Tracker, TrackingError, watch
from .trainer import EpochCallback, Trainer, TrainSettings

#: Protocol fields that only choose where figures are logged: a resumed run may switch them.
LOGGING_FIELDS = ("run.tensorboard", "run.mlflow", "run.log_every", "run.histograms")


class RunFailed(AeqpropError):
    """Training stopped on a fault (NotSettled, instrument fault, ...); the last checkpoint is intact."""

    exit_code = 1


def versions() -> dict[str, str]:
    """Versions recorded in every summary."""
    import numpy
    import pydantic
    import scipy

    return {
        "aeqprop": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
        "scipy": scipy.__version__, "pydantic": pydantic.__version__,
    }


def _streams(seed: int) -> list[np.random.SeedSequence]:
    """The system, rule and shuffling streams of ``seed`` (as :func:`aeqprop.protocol.build` spawns them)."""
    return np.random.SeedSequence(seed).spawn(3)


def system_from(settings: SystemSettings | str, seed: int = 0, **fields: Any) -> SystemSettings:
    """Validated system settings: a settings object as is, or a registered kind and its fields."""
    if isinstance(settings, SystemSettings):
        return settings
    return system_settings(settings).model_validate({**fields, "kind": settings})


def make_system(settings: SystemSettings | str, *, seed: int = 0, **fields: Any) -> PhysicalSystem:
    """Build a system by kind (``make_system("resistive", inputs=4, hidden=[8], outputs=3)``) or from settings.

    The initial parameters are drawn as ``aeqprop run`` draws them for ``run.seed = seed``.
    """
    return system_from(settings, **fields).build(np.random.default_rng(_streams(seed)[0]))


def make_rule(settings: RuleSettings | str, system: PhysicalSystem, *, seed: int = 0,
              lr: float | list[float] | None = None, lr_bias: float | list[float] | None = None,
              decay: float = 1.0, momentum: float = 0.0, nesterov: bool = False, **fields: Any) -> LearningRule:
    """Build a learning rule for ``system`` by kind (``make_rule("ep", system, lr=0.05, beta=0.5)``).

    ``lr``/``lr_bias``/``decay``/``momentum``/``nesterov`` make the SGD optimizer of rules that need one (``ep``,
    ``cep``); the rule's own fields are keyword arguments. Random draws follow ``run.seed = seed``.
    """
    rule: RuleSettings = (settings if isinstance(settings, RuleSettings)
                          else rule_settings(settings).model_validate({**fields, "kind": settings}))
    system.spec.require(rule.requires(), f"algorithm {rule.kind!r}")
    optimizer = None
    if rule.needs_optimizer():
        if lr is None:
            raise ProtocolError(f"algorithm {rule.kind!r} needs a learning rate: pass lr=...")
        optimizer = SGD(system.spec.params, lr, lr_bias, decay, momentum, nesterov)
    elif lr is not None:
        raise ProtocolError(f"algorithm {rule.kind!r} has no optimizer: it takes no lr")
    return rule.build(system, optimizer, np.random.default_rng(_streams(seed)[1]))


def make_data(name: str | None = None, *, path: str | Path | None = None, x_train: Any = None,
              y_train: Any = None, x_test: Any = None, y_test: Any = None, n_classes: int | None = None,
              train_limit: int | None = None, test_limit: int | None = None, **fields: Any) -> Dataset:
    """A checked data set: a registered name (``make_data("iris")``), an ``.npz`` file (``path=...``) or arrays.

    Arrays: ``x`` of shape (samples, features), integer labels ``y`` in ``[0, n_classes)`` (default: the
    largest label + 1). Every data set passes the same checks as a protocol's (finite, integer labels, sizes).
    """
    if x_train is not None or y_train is not None or x_test is not None or y_test is not None:
        if name is not None or path is not None:
            raise ProtocolError("make_data: give a name, a path or arrays, not several")
        arrays = [np.asarray(a) for a in (x_train, y_train, x_test, y_test)]
        if any(a.ndim == 0 for a in arrays):
            raise ProtocolError("make_data: x_train, y_train, x_test and y_test are all needed")
        x_tr, y_tr, x_te, y_te = arrays
        if n_classes is None:
            labels = [y for y in (y_tr, y_te) if y.size and y.dtype.kind in "iu"]
            n_classes = int(max(int(y.max()) for y in labels)) + 1 if labels else 1
        data = check_dataset(Dataset("arrays", x_tr, y_tr, x_te, y_te, n_classes), "make_data")
        return data.limit(train_limit, test_limit)
    config = DataConfig(name=name, path=None if path is None else str(path), train_limit=train_limit,
                        test_limit=test_limit, **fields)
    return load_data(config)


@dataclass
class Experiment:
    """A system, a learning rule, data and training settings: everything one run needs.

    Build it from a protocol file with :meth:`from_protocol`, or from objects made in code with
    :meth:`from_objects`; :meth:`fit` trains, with a run directory when ``out`` is given. An experiment built
    from a protocol owns its system: use it as a context manager (or call :meth:`close`) to release it.
    """

    system: PhysicalSystem
    rule: LearningRule
    data: Dataset
    settings: TrainSettings
    shuffle_rng: np.random.Generator
    protocol: Protocol | None = None
    source: str = "python"
    record: dict[str, Any] = field(default_factory=dict)

    # --- construction ----------------------------------------------------------------------------------------
    @classmethod
    def from_protocol(cls, protocol: Protocol | str | Path, overrides: Sequence[str] = (), *,
                      system: PhysicalSystem | None = None, progress: bool | None = None,
                      log: Callable[[str], None] | None = print) -> Experiment:
        """Load (with ``--set``-style overrides), validate and build a protocol; data are loaded first.

        ``system`` replaces the protocol's own (e.g. a rig over a replayed transcript).
        """
        source = "protocol"
        if not isinstance(protocol, Protocol):
            source = str(protocol)
            protocol = load_protocol(protocol, list(overrides))
        elif overrides:
            raise ProtocolError("overrides apply to a protocol file, not to a validated Protocol")
        data = load_data(protocol.data)
        inputs, outputs = protocol.system.feature_counts()
        if (data.n_features, data.n_classes) != (inputs, outputs):  # a file that lied about its size
            raise DataError(f"{protocol.data.label}: the loaded data have {data.n_features} features and "
                            f"{data.n_classes} classes but the system has {inputs} inputs and {outputs} outputs")
        parts = build(protocol, system)
        run = protocol.run
        settings = TrainSettings(
            epochs=run.epochs, batch_size=run.batch_size, eval_batch_size=run.eval_batch_size,
            checkpoint_every=run.checkpoint_every, target_low=protocol.data.target_low,
            target_high=protocol.data.target_high, seed=run.seed, progress=progress, log=log,
        )
        return cls(parts.system, parts.rule, data, settings, parts.shuffle_rng, protocol, source, to_dict(protocol))

    @classmethod
    def from_objects(cls, system: PhysicalSystem, rule: LearningRule, data: Dataset, *, epochs: int,
                     batch_size: int = 4, eval_batch_size: int = 1000, checkpoint_every: int = 1, seed: int = 0,
                     target_low: float = 0.0, target_high: float = 1.0, progress: bool | None = None,
                     log: Callable[[str], None] | None = print) -> Experiment:
        """Objects made in code; the shuffling stream is that of ``run.seed = seed``."""
        if data.n_features != system.spec.n_inputs or data.n_classes != system.spec.n_outputs:
            raise ProtocolError(f"data {data.name!r} has {data.n_features} features and {data.n_classes} classes "
                                f"but the system has {system.spec.n_inputs} inputs and {system.spec.n_outputs} "
                                "outputs")
        settings = TrainSettings(epochs=epochs, batch_size=batch_size, eval_batch_size=eval_batch_size,
                                 checkpoint_every=checkpoint_every, target_low=target_low, target_high=target_high,
                                 seed=seed, progress=progress, log=log)
        record = {
            "source": "python", "system": system.spec.description or type(system).__name__,
            "rule": type(rule).__name__, "data": data.name,
            "train": {"epochs": epochs, "batch_size": batch_size, "eval_batch_size": eval_batch_size,
                      "checkpoint_every": checkpoint_every, "seed": seed, "target_low": target_low,
                      "target_high": target_high},
        }
        return cls(system, rule, data, settings, np.random.default_rng(_streams(seed)[2]), None, "python", record)

    # --- training --------------------------------------------------------------------------------------------
    def _open(self, out: str | Path, resume: bool) -> RunDirectory:
        check_out(out, resume, self.record, from_protocol=self.protocol is not None)
        if resume:
            return RunDirectory.open(out)
        if self.protocol is not None:
            return RunDirectory.create(out, self.record)
        return RunDirectory.create(out, None, record=self.record)

    def fit(self, out: str | Path | None = None, *, resume: bool = False,
            callback: EpochCallback | None = None) -> dict[str, Any]:
        """Train to ``epochs``; with ``out``, into that run directory (``resume=True``: continue it exactly).

        Returns the summary (also written to ``out/summary.json``). A fault (NotSettled, an instrument fault)
        writes a ``failed`` summary, keeps the last checkpoint and raises :class:`RunFailed`.
        """
        if resume and out is None:
            raise ProtocolError("resume needs the run directory (out=...)")
        log = self.settings.log or (lambda _: None)
        trainer = Trainer(self.system, self.rule, self.data, self.settings, self.shuffle_rng, None, callback)
        run_dir = None if out is None else self._open(out, resume)
        trainer.run_dir = run_dir
        tracker: Tracker | None = None
        try:
            if run_dir is not None and resume:
                trainer.resume()  # reprograms the checkpoint: an instrument fault here is a failed run (exit 1)
                log(f"resuming {run_dir.path} after epoch {trainer.state.epoch}")
            elif run_dir is not None:
                write_param_specs(run_dir.path, self.system.spec)  # device views in plots and reports
                log(f"run directory: {run_dir.path}")
            tracker = self._watch(trainer, run_dir, resume, callback)
            log(f"{self.system.spec.description}; {len(self.data.x_train)} train / "
                f"{len(self.data.x_test)} test samples")
            trainer.fit()
            self.system.close()  # outputs that cannot be confirmed off make the run failed
        except AeqpropError as exc:
            if isinstance(exc, TrackingError):
                raise
            try:
                self.system.close()  # outputs off now; a failure to confirm it joins the one error line
            except AeqpropError as close_exc:
                exc = type(exc)(f"{exc}; closing: {close_exc}")
            self._close(tracker, "failed")
            self._finish(run_dir, trainer, "failed", str(exc))
            if run_dir is None:
                where = "no run directory"
            elif trainer.checkpoint_epoch is not None:
                where = f"last checkpoint after epoch {trainer.checkpoint_epoch}; continue with --resume {run_dir.path}"
            else:
                where = "no checkpoint yet"
            failed = RunFailed(f"{type(exc).__name__}: {exc} ({where})")
            failed.exit_code = 2 if isinstance(exc, LimitViolation) else 1  # limits are bad input (README)
            raise failed from exc
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            self._close(tracker, status)
            self._finish(run_dir, trainer, status, f"{type(exc).__name__}: {exc}")
            raise
        self._close(tracker, "completed")
        return self._finish(run_dir, trainer, "completed", None)

    def _watch(self, trainer: Trainer, run_dir: RunDirectory | None, resume: bool,
               callback: EpochCallback | None) -> Tracker | None:
        """Open the live loggers a protocol's ``[run]`` asks for (TensorBoard, MLflow); chain ``callback``."""
        tracker = None
        if run_dir is not None and self.protocol is not None:
            try:
                tracker = watch(trainer, run_dir.path, self.protocol, resume)
            except TrackingError:
                if not resume:  # nothing trained yet: leave no half-made run directory behind
                    shutil.rmtree(run_dir.path)
                raise
        if callback is not None:
            logger = trainer.callback
            trainer.callback = (callback if logger is None
                                else lambda metrics: bool(logger(metrics)) | bool(callback(metrics)))
        return tracker

    @staticmethod
    def _close(tracker: Tracker | None, status: str) -> None:
        if tracker is not None:
            tracker.close(status)

    def _finish(self, run_dir: RunDirectory | None, trainer: Trainer, status: str, error: str | None) -> dict:
        summary = trainer.summary()
        summary.update(status=status, error=error, versions=versions(), protocol=self.source,
                       checkpoint_epoch=trainer.checkpoint_epoch)
        if run_dir is not None:
            run_dir.write_summary(summary)
        return summary

    def close(self) -> None:
        """Release the system (hardware switches its outputs off)."""
        self.system.close()

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            self.close()
        except AeqpropError:
            if exc_type is None:
                raise
            # leaving on an error already: that error is the one reported (fit joins a failed close to it)


def check_out(out: str | Path, resume: bool, record: dict[str, Any], *, from_protocol: bool) -> None:
    """Raise before anything is built or written when ``out`` cannot take this run.

    A new run needs an absent or empty folder; a resumed one needs a run directory whose recorded protocol
    (or Python settings) equals ``record`` in everything but the epoch count.
    """
    path = Path(out)
    if not resume:
        if path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunDirError(f"{path}: run directory exists and is not empty (use --resume {path} to continue it)")
        return
    run_dir = RunDirectory.open(path)
    if from_protocol:
        if not run_dir.protocol_path.is_file():
            raise RunDirError(f"{path}: was started from Python, not from a protocol file")
        saved = to_dict(validate_raw(read_raw(run_dir.protocol_path), str(run_dir.protocol_path)))
        _check_same(saved, record, skip={"run.epochs", *LOGGING_FIELDS})
    else:
        _check_same(run_dir.read_record(), record, skip={"train.epochs"})


def _check_same(saved: dict[str, Any], given: dict[str, Any], path: str = "",
                skip: frozenset[str] | set[str] = frozenset({"run.epochs"})) -> None:
    """Refuse to resume with settings that differ from the run's in anything but the epoch count."""
    for key in sorted(set(saved) | set(given)):
        where = f"{path}.{key}" if path else key
        if where in skip:
            continue
        a, b = saved.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            _check_same(a, b, where, skip)
        elif a != b:
            raise ProtocolError(f"--resume: {where} is {b!r} here but {a!r} in the run being resumed")


def train(system: PhysicalSystem, rule: LearningRule, data: Dataset, *, epochs: int, out: str | Path | None = None,
          resume: bool = False, callback: EpochCallback | None = None, **settings: Any) -> dict[str, Any]:
    """Train objects made in code; the keyword settings are those of :meth:`Experiment.from_objects`.

    With ``out`` the run directory is the one ``aeqprop run`` writes (``run.toml`` records the settings in
    place of a protocol); ``resume=True`` continues it exactly. The system is not closed.
    """
    experiment = Experiment.from_objects(system, rule, data, epochs=epochs, **settings)
    return experiment.fit(out, resume=resume, callback=callback)


def run_protocol(path: str | Path, overrides: Sequence[str] = (), *, out: str | Path | None = None,
                 resume: bool = False, **options: Any) -> dict[str, Any]:
    """``aeqprop run`` in one call: load, build, train into ``out`` (or resume it), release the system."""
    with Experiment.from_protocol(path, overrides, **options) as experiment:
        return experiment.fit(out, resume=resume)


__all__ = [
    "LOGGING_FIELDS", "RUN_RECORD", "Experiment", "RunFailed", "check_out", "make_data", "make_rule", "make_system",
    "run_protocol", "system_from", "train", "versions",
]
