"""``aeqprop run PROTOCOL``: train as the protocol says, into a run directory that can be resumed."""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from aeqprop import __version__
from aeqprop.data import load_data
from aeqprop.protocol import ProtocolError, build, load_protocol, read_raw, to_dict, validate_raw
from aeqprop.rundir import RunDirectory
from aeqprop.runview import write_param_specs
from aeqprop.system import AeqpropError
from aeqprop.tracking import TrackingError, watch
from aeqprop.trainer import Trainer, TrainSettings

from .protocols import resolve

HELP = "train a system as a protocol file says"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML), or the name of a shipped one (aeqprop protocols)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set run.epochs=3 (repeatable)")
    parser.add_argument("--out", help="run directory (default: <run.out>/<protocol name>-<time>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the run in DIR from its last checkpoint (run.epochs may be raised)")
    watch = parser.add_argument_group("live logging (optional extras)")
    watch.add_argument("--tensorboard", action="store_true", default=None,
                       help="write TensorBoard event files into RUN_DIR/tensorboard (sets run.tensorboard)")
    watch.add_argument("--mlflow", nargs="?", const=True, default=None, metavar="URI",
                       help="log to MLflow: RUN_DIR/mlflow.db, or the tracking URI given (sets run.mlflow)")
    watch.add_argument("--log-every", type=int, metavar="N", help="batch scalars every N batches (sets run.log_every)")
    parser.add_argument("--json", action="store_true",
                        help="end with the JSON summary line even on a terminal (piped output always does)")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show a progress bar")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show a progress bar")


def versions() -> dict[str, str]:
    import numpy
    import pydantic
    import scipy

    return {
        "aeqprop": __version__, "python": platform.python_version(), "numpy": numpy.__version__,
        "scipy": scipy.__version__, "pydantic": pydantic.__version__,
    }


def _check_same(saved: dict[str, Any], given: dict[str, Any], path: str = "") -> None:
    """Refuse to resume with a protocol that differs from the run's in anything but run.epochs."""
    for key in sorted(set(saved) | set(given)):
        where = f"{path}.{key}" if path else key
        if where in ("run.epochs", *LOGGING_FIELDS):
            continue
        a, b = saved.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            _check_same(a, b, where)
        elif a != b:
            raise ProtocolError(f"--resume: {where} is {b!r} here but {a!r} in the run being resumed")


#: Fields that only choose where figures are logged: a resumed run may switch them.
LOGGING_FIELDS = ("run.tensorboard", "run.mlflow", "run.log_every", "run.histograms")


def _logging_overrides(args: argparse.Namespace) -> list[str]:
    """The live-logging flags as ``--set`` overrides, so they end up in the resolved protocol."""
    out = []
    if args.tensorboard:
        out.append("run.tensorboard=true")
    if args.mlflow is not None:
        out.append("run.mlflow=true" if args.mlflow is True else f"run.mlflow={json.dumps(args.mlflow)}")
    if args.log_every is not None:
        out.append(f"run.log_every={args.log_every}")
    return out


def human_summary(summary: dict[str, Any], run_path: Path) -> str:
    """The few lines a person wants at the end of a run."""
    def pct(v: float | None) -> str:
        return "n/a" if v is None else f"{100 * v:.2f} %"

    minutes, seconds = divmod(summary.get("wall_s") or 0.0, 60)
    return (f"done: test accuracy {pct(summary.get('test_accuracy'))} (best {pct(summary.get('best_test_accuracy'))}), "
            f"train {pct(summary.get('train_accuracy'))} after {summary.get('epochs')} epochs in "
            f"{int(minutes)} min {seconds:.1f} s\n"
            f"run directory: {run_path}\n"
            f"next: aeqprop report {run_path}   |   aeqprop plot {run_path}")


class RunFailed(AeqpropError):
    """Training stopped on a fault (NotSettled, instrument fault, ...); the last checkpoint is intact."""

    exit_code = 1


def _finish(run_dir: RunDirectory, trainer: Trainer, protocol_path: str, status: str, error: str | None) -> dict:
    summary = trainer.summary()
    summary.update(status=status, error=error, versions=versions(), protocol=protocol_path,
                   checkpoint_epoch=trainer.checkpoint_epoch)
    run_dir.write_summary(summary)
    return summary


def run(args: argparse.Namespace) -> int:
    args.protocol = resolve(args.protocol)
    protocol = load_protocol(args.protocol, [*args.overrides, *_logging_overrides(args)])
    if args.resume:
        run_dir = RunDirectory.open(args.resume)
        saved = to_dict(validate_raw(read_raw(run_dir.protocol_path), str(run_dir.protocol_path)))
        _check_same(saved, to_dict(protocol))
    data = load_data(protocol.data)
    parts = build(protocol)
    try:
        if not args.resume:
            stamp = time.strftime("%Y%m%d-%H%M%S")
            out = Path(args.out) if args.out else Path(protocol.run.out) / f"{Path(args.protocol).stem}-{stamp}"
            run_dir = RunDirectory.create(out, to_dict(protocol))
        settings = TrainSettings(
            epochs=protocol.run.epochs, batch_size=protocol.run.batch_size,
            eval_batch_size=protocol.run.eval_batch_size, checkpoint_every=protocol.run.checkpoint_every,
            target_low=protocol.data.target_low, target_high=protocol.data.target_high, seed=protocol.run.seed,
            progress=args.progress,
        )
        trainer = Trainer(parts.system, parts.rule, data, settings, parts.shuffle_rng, run_dir)
        if args.resume:
            trainer.resume()
            print(f"resuming {run_dir.path} after epoch {trainer.state.epoch}")
        else:
            write_param_specs(run_dir.path, parts.system.spec)
            print(f"run directory: {run_dir.path}")
        try:
            tracker = watch(trainer, run_dir.path, protocol, bool(args.resume))
        except TrackingError:
            if not args.resume:  # nothing trained yet: leave no half-made run directory behind
                shutil.rmtree(run_dir.path)
            raise
        print(f"{parts.system.spec.description}; {len(data.x_train)} train / {len(data.x_test)} test samples")
        sys.stdout.flush()
        try:
            trainer.fit()
        except AeqpropError as exc:
            tracker.close("failed")
            _finish(run_dir, trainer, str(args.protocol), "failed", str(exc))
            where = (f"last checkpoint after epoch {trainer.checkpoint_epoch}; continue with --resume {run_dir.path}"
                     if trainer.checkpoint_epoch else "no checkpoint yet (it stopped during the first epoch)")
            raise RunFailed(f"{type(exc).__name__}: {exc} ({where})") from exc
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            tracker.close(status)
            _finish(run_dir, trainer, str(args.protocol), status, f"{type(exc).__name__}: {exc}")
            raise
        tracker.close("completed")
        summary = _finish(run_dir, trainer, str(args.protocol), "completed", None)
    finally:
        parts.system.close()
    if sys.stdout.isatty() and not args.json:
        print(human_summary(summary, run_dir.path))
    else:
        print(json.dumps({k: summary[k] for k in ("test_accuracy", "train_accuracy", "epochs", "wall_s", "samples_per_s")}))
    return 0
