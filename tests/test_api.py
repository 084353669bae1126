"""The Python API takes the same path as ``aeqprop run``: same run directory, same numbers, exact resume."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import aeqprop as aq
from aeqprop.cli import main
from aeqprop.data import DataError

from .conftest import ROOT

DOC = ROOT / "docs" / "python-api.md"

IRIS = """
version = 1
[system]
kind = "resistive"
inputs = 4
hidden = [8]
outputs = 3
input_gain = 2.0
g_min = 0.01
[algorithm]
kind = "ep"
estimator = "one-sided"
beta = 0.5
[optimizer]
kind = "sgd"
lr = 0.1
[data]
name = "iris"
[run]
epochs = 2
seed = 3
batch_size = 1
"""


def _snippets() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_readme_example_runs_as_written(tmp_path) -> None:
    """The first snippet of docs/python-api.md is the README's example: run it unchanged in a fresh process."""
    done = subprocess.run([sys.executable, "-c", _snippets()[0]], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    accuracies = [float(v) for v in re.findall(r"test accuracy after \d epochs: ([0-9.]+)", done.stdout)]
    assert len(accuracies) == 2 and all(0 <= a <= 1 for a in accuracies)
    assert "resuming" in done.stdout


def test_readme_shows_the_tested_example() -> None:
    """The README's Python example is the snippet the test above runs, character for character."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    assert blocks, "the README shows no Python example"
    assert blocks[0] == _snippets()[0]


def test_protocol_snippet_runs_from_the_repository_root() -> None:
    done = subprocess.run([sys.executable, "-c", _snippets()[1]], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout


def _checkpoint(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoint.npz") as f:
        return {k: f[k] for k in f.files if k != "__state__"}


def _metrics(run: Path) -> list[dict]:
    drop = {"wall_s", "train_s", "samples_per_s"}
    return [{k: v for k, v in json.loads(line).items() if k not in drop}
            for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_code_and_protocol_give_identical_runs(tmp_path, capsys) -> None:
    """make_system/make_rule/train with seed s equal a protocol with run.seed = s, bit for bit."""
    protocol = tmp_path / "iris.toml"
    protocol.write_text(IRIS)
    assert main(["run", str(protocol), "--out", str(tmp_path / "cli"), "--no-progress"]) == 0
    system = aq.make_system("resistive", inputs=4, hidden=[8], outputs=3, input_gain=2.0, g_min=0.01, seed=3)
    rule = aq.make_rule("ep", system, estimator="one-sided", beta=0.5, lr=0.1, seed=3)
    summary = aq.train(system, rule, aq.make_data("iris"), epochs=2, batch_size=1, seed=3, out=tmp_path / "py",
                       log=None)
    assert summary["status"] == "completed"
    assert _metrics(tmp_path / "cli") == _metrics(tmp_path / "py")
    cli, py = _checkpoint(tmp_path / "cli"), _checkpoint(tmp_path / "py")
    assert cli.keys() == py.keys() and all(np.array_equal(cli[k], py[k]) for k in cli)
    assert (tmp_path / "py" / "run.toml").is_file() and not (tmp_path / "py" / "protocol.toml").exists()
    assert main(["plot", str(tmp_path / "py")]) == 0


def test_resume_in_code_is_exact(tmp_path) -> None:
    """Two epochs, then a resumed run to four (fresh objects), equal four epochs straight."""

    def parts():
        system = aq.make_system("resistive", inputs=4, hidden=[8], outputs=3, input_gain=2.0, g_min=0.01, seed=1)
        return system, aq.make_rule("ep", system, estimator="one-sided", beta=0.5, lr=0.1, seed=1)

    data = aq.make_data("iris", train_limit=40)
    aq.train(*parts(), data, epochs=4, batch_size=2, seed=1, out=tmp_path / "straight", log=None)
    aq.train(*parts(), data, epochs=2, batch_size=2, seed=1, out=tmp_path / "split", log=None)
    aq.train(*parts(), data, epochs=4, batch_size=2, seed=1, out=tmp_path / "split", resume=True, log=None)
    a, b = _checkpoint(tmp_path / "straight"), _checkpoint(tmp_path / "split")
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert _metrics(tmp_path / "straight") == _metrics(tmp_path / "split")
    with pytest.raises(aq.ProtocolError, match="train.batch_size"):
        aq.train(*parts(), data, epochs=5, batch_size=1, seed=1, out=tmp_path / "split", resume=True, log=None)


def test_resume_with_momentum_is_exact(tmp_path) -> None:
    """The SGD velocities are checkpointed: 2 + 2 resumed epochs equal 4 straight, and momentum changes the run."""

    def parts(momentum: float = 0.9):
        system = aq.make_system("resistive", inputs=4, hidden=[8], outputs=3, input_gain=2.0, g_min=0.01, seed=1)
        return system, aq.make_rule("ep", system, estimator="one-sided", beta=0.5, lr=0.05, momentum=momentum,
                                    seed=1)

    data = aq.make_data("iris", train_limit=40)
    aq.train(*parts(), data, epochs=4, batch_size=2, seed=1, out=tmp_path / "straight", log=None)
    aq.train(*parts(), data, epochs=2, batch_size=2, seed=1, out=tmp_path / "split", log=None)
    aq.train(*parts(), data, epochs=4, batch_size=2, seed=1, out=tmp_path / "split", resume=True, log=None)
    aq.train(*parts(0.0), data, epochs=4, batch_size=2, seed=1, out=tmp_path / "plain", log=None)
    a, b, c = (_checkpoint(tmp_path / r) for r in ("straight", "split", "plain"))
    assert any(k.startswith("__array__") for k in a)  # the velocities are in the checkpoint
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert _metrics(tmp_path / "straight") == _metrics(tmp_path / "split")
    assert not all(np.array_equal(a[k], c[k]) for k in c)


def test_python_run_is_not_resumed_from_a_protocol(tmp_path, capsys) -> None:
    system = aq.make_system("resistive", inputs=4, hidden=[8], outputs=3, seed=0)
    rule = aq.make_rule("ep", system, estimator="one-sided", beta=0.5, lr=0.05)
    aq.train(system, rule, aq.make_data("iris", train_limit=8), epochs=1, out=tmp_path / "py", log=None)
    protocol = tmp_path / "iris.toml"
    protocol.write_text(IRIS)
    assert main(["run", str(protocol), "--resume", str(tmp_path / "py")]) == 2
    assert "started from Python" in capsys.readouterr().err


def test_numpy_arrays_are_checked_like_files() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.random((20, 4)), rng.integers(0, 3, 20)
    data = aq.make_data(x_train=x, y_train=y, x_test=x, y_test=y)
    assert data.n_classes == 3 and data.n_features == 4
    with pytest.raises(DataError, match="labels must be integers"):
        aq.make_data(x_train=x, y_train=y.astype(float), x_test=x, y_test=y)
    with pytest.raises(DataError, match="non-finite"):
        aq.make_data(x_train=np.where(x > 0.9, np.nan, x), y_train=y, x_test=x, y_test=y)
    with pytest.raises(DataError, match=r"label 3 at sample \d+ is outside 0..2"):
        aq.make_data(x_train=x, y_train=np.where(y == 2, 3, y), x_test=x, y_test=y, n_classes=3)


def test_npz_data_set_in_a_protocol(tmp_path, capsys) -> None:
    """data.path names a user .npz file: validated (sizes) and trained like a built-in set."""
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "blobs.npz", x_train=rng.random((30, 4)), y_train=rng.integers(0, 3, 30),
             x_test=rng.random((9, 4)), y_test=rng.integers(0, 3, 9))
    protocol = tmp_path / "blobs.toml"
    protocol.write_text(IRIS.replace('name = "iris"', f'path = "{tmp_path / "blobs.npz"}"'))
    assert main(["validate", str(protocol)]) == 0
    assert main(["run", str(protocol), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
    assert main(["validate", str(protocol), "--set", "system.inputs=5"]) == 2
    assert "has 4 features and 3 classes but the system has 5 inputs" in capsys.readouterr().err
