"""``aeqprop run PROTOCOL``: train as the protocol says, into a run directory that can be resumed."""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

from aeqprop import __version__
from aeqprop.data import load_dataset
from aeqprop.protocol import ProtocolError, build, load_protocol, read_raw, to_dict, validate_raw
from aeqprop.rundir import RunDirectory
from aeqprop.system import AeqpropError, LimitViolation
from aeqprop.trainer import Trainer, TrainSettings

HELP = "train a system as a protocol file says"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set run.epochs=3 (repeatable)")
    parser.add_argument("--out", help="run directory (default: <run.out>/<protocol name>-<time>)")
    parser.add_argument("--resume", metavar="DIR",
                        help="continue the run in DIR from its last checkpoint (run.epochs may be raised)")
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
        if where == "run.epochs":
            continue
        a, b = saved.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            _check_same(a, b, where)
        elif a != b:
            raise ProtocolError(f"--resume: {where} is {b!r} here but {a!r} in the run being resumed")


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
    protocol = load_protocol(args.protocol, args.overrides)
    if args.resume:
        run_dir = RunDirectory.open(args.resume)
        saved = to_dict(validate_raw(read_raw(run_dir.protocol_path), str(run_dir.protocol_path)))
        _check_same(saved, to_dict(protocol))
    data = load_dataset(protocol.data.name, protocol.data.root, protocol.data.test_fraction, protocol.data.split_seed)
    data = data.limit(protocol.data.train_limit, protocol.data.test_limit)
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
        try:
            if args.resume:
                trainer.resume()  # reprograms the checkpoint: an instrument fault here is a failed run (exit 1)
                print(f"resuming {run_dir.path} after epoch {trainer.state.epoch}")
            else:
                print(f"run directory: {run_dir.path}")
            print(f"{parts.system.spec.description}; {len(data.x_train)} train / {len(data.x_test)} test samples")
            sys.stdout.flush()
            trainer.fit()
            parts.system.close()  # outputs that cannot be confirmed off make the run failed
        except AeqpropError as exc:
            try:
                parts.system.close()  # outputs off now; a failure to confirm it joins the one error line
            except AeqpropError as close_exc:
                exc = type(exc)(f"{exc}; closing: {close_exc}")
            _finish(run_dir, trainer, str(args.protocol), "failed", str(exc))
            where = (f"last checkpoint after epoch {trainer.checkpoint_epoch}; continue with --resume {run_dir.path}"
                     if trainer.checkpoint_epoch is not None else "no checkpoint yet")
            failed = RunFailed(f"{type(exc).__name__}: {exc} ({where})")
            failed.exit_code = 2 if isinstance(exc, LimitViolation) else 1  # README: limits are bad input
            raise failed from exc
        except BaseException as exc:
            status = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            _finish(run_dir, trainer, str(args.protocol), status, f"{type(exc).__name__}: {exc}")
            raise
        summary = _finish(run_dir, trainer, str(args.protocol), "completed", None)
    finally:
        try:
            parts.system.close()  # idempotent: a no-op after the close above
        except AeqpropError as exc:
            print(f"aeqprop: warning: {exc}", file=sys.stderr)
    print(json.dumps({k: summary[k] for k in ("test_accuracy", "train_accuracy", "epochs", "wall_s", "samples_per_s")}))
    return 0
