"""The training loop: epochs of batches through a learning rule, evaluation, run log and checkpoints."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .costs import per_sample, read_cost, summary_costs
from .data import Dataset, one_hot
from .rules import LearningRule
from .rundir import RunDirectory
from .system import PhysicalSystem

#: Called after each epoch with its metrics; return True to stop the run (state is saved first).
EpochCallback = Callable[[dict[str, Any]], bool]
#: Called after each batch with the global batch index (1-based, continuing across epochs and resumes) and that
#: batch's figures: loss, accuracy, sweeps, relaxations, homeostasis_iterations (live loggers).
BatchCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainSettings:
    epochs: int
    batch_size: int
    eval_batch_size: int = 1000
    checkpoint_every: int = 1
    target_low: float = 0.0
    target_high: float = 1.0
    seed: int = 0
    progress: bool | None = None  # None: a bar only when stderr is a terminal
    log: Callable[[str], None] | None = print


@dataclass
class TrainState:
    """What survives a checkpoint besides the system and the rule."""

    epoch: int = 0
    wall_s: float = 0.0
    samples: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)


def evaluate(rule: LearningRule, system: PhysicalSystem, x: np.ndarray, y: np.ndarray, batch: int) -> float:
    """Accuracy of the free-phase argmax over ``x`` (batched by ``batch``, capped by the system)."""
    cap = system.spec.max_batch or batch
    batch = min(batch, cap)
    correct = 0
    for start in range(0, x.shape[0], batch):
        out = rule.predict(system, x[start : start + batch])
        correct += int(np.sum(np.argmax(out, axis=1) == y[start : start + batch]))
    return correct / max(1, x.shape[0])


class Trainer:
    """Runs epochs; with a :class:`RunDirectory` it logs, checkpoints and can resume exactly."""

    def __init__(
        self,
        system: PhysicalSystem,
        rule: LearningRule,
        data: Dataset,
        settings: TrainSettings,
        shuffle_rng: np.random.Generator,
        run_dir: RunDirectory | None = None,
        callback: EpochCallback | None = None,
        batch_callback: BatchCallback | None = None,
    ) -> None:
        system.spec.require(rule.requires, type(rule).__name__)
        cap = system.spec.max_batch
        if cap is not None and settings.batch_size > cap:
            raise ValueError(f"run.batch_size={settings.batch_size} exceeds the system's max_batch={cap}")
        self.system = system
        self.rule = rule
        self.data = data
        self.settings = settings
        self.rng = shuffle_rng
        self.run_dir = run_dir
        self.callback = callback
        self.batch_callback = batch_callback
        self.state = TrainState()
        self.checkpoint_epoch: int | None = None  # epoch of the last checkpoint written or loaded
        self._targets = one_hot(data.y_train, data.n_classes, settings.target_low, settings.target_high)

    # --- checkpoints -------------------------------------------------------------------------------------
    def save(self) -> None:
        if self.run_dir is None:
            return
        state = {
            "epoch": self.state.epoch,
            "wall_s": self.state.wall_s,
            "samples": self.state.samples,
            "history": self.state.history,
            "rule": self.rule.state_dict(),
            "shuffle_rng": self.rng.bit_generator.state,
        }
        self.run_dir.save_checkpoint(self.system.snapshot(), state)
        self.checkpoint_epoch = self.state.epoch

    def resume(self) -> None:
        """Load the last checkpoint of ``run_dir`` and drop metrics written after it."""
        assert self.run_dir is not None
        arrays, state = self.run_dir.load_checkpoint()
        self.system.restore(arrays)
        self.rule.load_state_dict(state["rule"])
        self.rng.bit_generator.state = state["shuffle_rng"]
        self.state = TrainState(state["epoch"], state["wall_s"], state["samples"], state["history"])
        self.checkpoint_epoch = self.state.epoch
        self.run_dir.truncate_metrics(self.state.epoch)

    # --- the loop ----------------------------------------------------------------------------------------
    def _progress(self, total: int, epoch: int):
        show = self.settings.progress
        if show is None:
            show = sys.stderr.isatty()
        if not show:
            return None
        from tqdm import tqdm

        return tqdm(total=total, desc=f"epoch {epoch}/{self.settings.epochs}", unit="batch", leave=False)

    def train_epoch(self) -> dict[str, Any]:
        """One pass over the shuffled training set, then evaluation; returns the epoch's metrics."""
        s = self.settings
        epoch = self.state.epoch + 1
        n = self.data.x_train.shape[0]
        order = self.rng.permutation(n)
        n_batches = -(-n // s.batch_size)
        bar = self._progress(n_batches, epoch)
        loss_sum = 0.0
        correct = 0
        sweeps = 0
        relaxations = 0
        holds = 0
        cost_before = read_cost(self.system)
        start = time.perf_counter()
        try:
            for b in range(n_batches):
                idx = order[b * s.batch_size : (b + 1) * s.batch_size]
                x, target = self.data.x_train[idx], self._targets[idx]
                report = self.rule.train_step(self.system, x, target)
                # np.sum and ** 2, minus their Python dispatch (at batch 1 it costs more than the arithmetic)
                error = report.outputs - target
                batch_loss = 0.5 * float(np.add.reduce(np.square(error, out=error), axis=None))
                batch_correct = int(np.count_nonzero(report.outputs.argmax(axis=1) == self.data.y_train[idx]))
                loss_sum += batch_loss
                correct += batch_correct
                if self.batch_callback is not None:
                    self.batch_callback((epoch - 1) * n_batches + b + 1, {
                        "loss": batch_loss / len(idx), "accuracy": batch_correct / len(idx),
                        "sweeps": float(report.sweeps), "relaxations": float(report.relaxations),
                        "homeostasis_iterations": float(report.homeostasis_iterations)})
                sweeps += report.sweeps
                relaxations += report.relaxations
                holds += report.homeostasis_iterations
                if bar is not None and (b % 25 == 0 or b == n_batches - 1):
                    seen = min(n, (b + 1) * s.batch_size)
                    bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
                    bar.update(b + 1 - bar.n)
        finally:
            if bar is not None:
                bar.close()
        train_s = time.perf_counter() - start
        costs = per_sample(cost_before, read_cost(self.system), n)  # training only, not the evaluation
        hook = getattr(self.rule, "epoch_metrics", None)
        extra = hook() if callable(hook) else {}
        self.rule.end_epoch()
        test_acc = evaluate(self.rule, self.system, self.data.x_test, self.data.y_test, s.eval_batch_size)
        wall = time.perf_counter() - start
        self.state.epoch = epoch
        self.state.wall_s += wall
        self.state.samples += n
        metrics = {
            "epoch": epoch,
            "train_loss": loss_sum / n,
            "train_accuracy": correct / n,
            "test_accuracy": test_acc,
            "wall_s": wall,
            "train_s": train_s,
            "samples_per_s": n / train_s,
            "sweeps_per_relaxation": sweeps / max(1, relaxations),
            **extra,
            **costs,
        }
        if holds:
            metrics["homeostasis_iterations_per_batch"] = holds / n_batches
        return metrics

    def fit(self) -> dict[str, Any]:
        """Train until ``epochs`` (continuing from the loaded state) and return the summary."""
        s = self.settings
        if self.checkpoint_epoch is None:
            self.save()  # epoch 0: a fault in the first epoch can resume from the untouched start
        while self.state.epoch < s.epochs:
            metrics = self.train_epoch()
            self.state.history.append(metrics)
            if self.run_dir is not None:
                self.run_dir.append_metrics(metrics)
            stop = bool(self.callback(metrics)) if self.callback else False
            if self.state.epoch % s.checkpoint_every == 0 or stop or self.state.epoch == s.epochs:
                self.save()
            if s.log:
                s.log(
                    f"epoch {metrics['epoch']}/{s.epochs}  loss {metrics['train_loss']:.4f}  "
                    f"train {100 * metrics['train_accuracy']:.2f}%  test {100 * metrics['test_accuracy']:.2f}%  "
                    f"{metrics['wall_s']:.1f} s  ({metrics['samples_per_s']:.0f} samples/s)"
                )
            if stop:
                break
        return self.summary()

    def summary(self) -> dict[str, Any]:
        hist = self.state.history
        last = hist[-1] if hist else {}
        train_s = sum(h["train_s"] for h in hist)
        return {
            "test_accuracy": last.get("test_accuracy"),
            "train_accuracy": last.get("train_accuracy"),
            "train_loss": last.get("train_loss"),
            "best_test_accuracy": max((h["test_accuracy"] for h in hist), default=None),
            "epochs": self.state.epoch,
            "wall_s": self.state.wall_s,
            "samples_per_s": self.state.samples / train_s if train_s else None,
            "seed": self.settings.seed,
            **summary_costs(hist),
        }
