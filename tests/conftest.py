"""Shared fixtures: small resistive networks, tiny protocol files, the installed ``aeqprop`` command."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from aeqprop.simulators.resistive import ResistiveConfig, ResistiveNetwork

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "datasets"


def small_network(
    inputs: int = 5, hidden: tuple[int, ...] = (6,), outputs: int = 3, seed: int = 0, **kw
) -> ResistiveNetwork:
    """A network small enough for finite differences, with nonzero biases so every term is exercised."""
    cfg = ResistiveConfig(inputs=inputs, hidden=list(hidden), outputs=outputs, input_gain=2.0,
                          bias_init=0.1, **kw)
    return cfg.build(np.random.default_rng(seed))


def digits_test_accuracy(raw: dict, train: int, test: int) -> float:
    """Train the protocol ``raw`` (a dict) quietly on ``train`` digits; its last test accuracy on ``test`` others."""
    from aeqprop.data import load_digits
    from aeqprop.protocol import build, validate_raw
    from aeqprop.trainer import Trainer, TrainSettings

    parts = build(validate_raw(raw, "test"))
    run = raw["run"]
    settings = TrainSettings(epochs=run["epochs"], batch_size=run["batch_size"], log=None, progress=False)
    trainer = Trainer(parts.system, parts.rule, load_digits().limit(train, test), settings, parts.shuffle_rng, None)
    trainer.fit()
    return trainer.state.history[-1]["test_accuracy"]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture(scope="session")
def aeqprop_cmd() -> list[str]:
    """The installed console script (never the source tree: it must work as users get it)."""
    exe = Path(sys.executable).parent / "aeqprop"
    found = str(exe) if exe.exists() else shutil.which("aeqprop")
    assert found, "the aeqprop console script is not installed in this environment"
    return [found]


TINY_PROTOCOL = """
version = 1
[system]
kind = "resistive"
inputs = 64
hidden = [64]
outputs = 10
input_gain = 20.0
[algorithm]
kind = "ep"
estimator = "centered"
beta = 0.5
[optimizer]
kind = "sgd"
lr = 0.05
decay = 0.9
[data]
name = "digits"
[run]
epochs = 3
seed = 7
batch_size = 4
"""


@pytest.fixture
def tiny_protocol(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PROTOCOL)
    return path
