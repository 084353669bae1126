"""Live logging: real runs write TensorBoard and MLflow records, read back with those libraries' own readers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from aeqprop.cli import main

tb_reader = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator",
                                reason="pip install 'aeqprop[test,tensorboard]' to read event files")
pytest.importorskip("tensorboardX", reason="pip install 'aeqprop[tensorboard]'")
pytest.importorskip("mlflow", reason="pip install 'aeqprop[mlflow]'")
pytest.importorskip("sqlalchemy", reason="pip install 'aeqprop[mlflow]'")


def _events(run: Path, axis: str):
    acc = tb_reader.EventAccumulator(str(run / "tensorboard" / axis), size_guidance={"scalars": 0, "histograms": 0})
    acc.Reload()
    return acc


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _mlflow(run: Path):
    from mlflow.tracking import MlflowClient

    ids = json.loads((run / "mlflow_run.json").read_text())
    client = MlflowClient(tracking_uri=ids["tracking_uri"])
    return client, ids["run_id"]


def test_tensorboard_and_mlflow_carry_the_run(tmp_path, tiny_protocol, capsys) -> None:
    """Epoch scalars equal metrics.jsonl; batch points every N batches; histograms per group; the protocol."""
    out = tmp_path / "run"
    args = ["run", str(tiny_protocol), "--out", str(out), "--no-progress", "--set", "run.epochs=2",
            "--set", "data.train_limit=200", "--tensorboard", "--mlflow", "--log-every", "10"]
    assert main(args) == 0
    records = _metrics(out)
    epoch = _events(out, "epoch")
    tags = epoch.Tags()
    for key in ("train_loss", "train_accuracy", "test_accuracy", "samples_per_s", "sweeps_per_relaxation"):
        points = epoch.Scalars(f"epoch/{key}")
        assert [p.step for p in points] == [1, 2]
        np.testing.assert_allclose([p.value for p in points], [r[key] for r in records], rtol=1e-6)
    params = json.loads((out / "params.json").read_text())["params"]
    assert set(tags["histograms"]) == {f"{kind}/{name}" for name in params for kind in ("params", "updates")}
    hist = epoch.Histograms("params/g1")
    assert [h.step for h in hist] == [1, 2] and hist[-1].histogram_value.num == np.prod(params["g1"]["shape"])
    assert "protocol/text_summary" in tags["tensors"]

    batch = _events(out, "batch")
    n_batches = 200 // 4
    steps = [p.step for p in batch.Scalars("batch/loss")]
    assert steps == list(range(10, 2 * n_batches + 1, 10))
    # the per-batch losses average (over the 5 windows of one epoch) to the epoch's train loss
    first = [p.value for p in batch.Scalars("batch/loss")][:5]
    assert np.mean(first) == pytest.approx(records[0]["train_loss"], rel=1e-5)

    client, run_id = _mlflow(out)
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "run"
    assert run.data.params["system.kind"] == "resistive" and run.data.params["run.epochs"] == "2"
    assert run.data.params["system.hidden"] == "[64]"
    history = client.get_metric_history(run_id, "test_accuracy")
    assert sorted((m.step, m.value) for m in history) == [(r["epoch"], r["test_accuracy"]) for r in records]
    assert [m.step for m in client.get_metric_history(run_id, "batch_loss")] == steps


def test_killed_and_resumed_run_continues_one_series(tmp_path, tiny_protocol, aeqprop_cmd) -> None:
    """SIGKILL between checkpoints, then --resume: each series has every epoch exactly once, with the values
    metrics.jsonl ends with (TensorBoard hides what the killed run wrote after its checkpoint)."""
    run = tmp_path / "run"
    common = ["--set", "run.epochs=9", "--set", "run.checkpoint_every=3", "--no-progress",
              "--tensorboard", "--mlflow", "--log-every", "50"]
    proc = subprocess.Popen([*aeqprop_cmd, "run", str(tiny_protocol), "--out", str(run), *common],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if metrics.is_file() and len(metrics.read_text().splitlines()) >= 4:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    with np.load(run / "checkpoint.npz") as data:
        checkpoint_epoch = json.loads(str(data["__state__"]))["epoch"]
    killed_at = len(metrics.read_text().splitlines())
    assert checkpoint_epoch == 3 and killed_at > checkpoint_epoch, "nothing logged after the checkpoint"

    resumed = subprocess.run([*aeqprop_cmd, "run", str(tiny_protocol), "--resume", str(run), *common],
                             check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "INFO" not in resumed.stderr  # the libraries' chatter stays out of the run's output
    records = _metrics(run)
    assert [r["epoch"] for r in records] == list(range(1, 10))

    epoch = _events(run, "epoch")
    for key in ("test_accuracy", "train_loss"):
        points = epoch.Scalars(f"epoch/{key}")
        assert [p.step for p in points] == list(range(1, 10))
        np.testing.assert_allclose([p.value for p in points], [r[key] for r in records], rtol=1e-6)
    assert [h.step for h in epoch.Histograms("params/g1")] == list(range(1, 10))
    batch_steps = [p.step for p in _events(run, "batch").Scalars("batch/loss")]
    assert batch_steps == sorted(set(batch_steps)) and batch_steps[0] == 50

    client, run_id = _mlflow(run)
    assert client.get_run(run_id).info.status == "FINISHED"
    history = sorted((m.step, m.value) for m in client.get_metric_history(run_id, "test_accuracy"))
    assert history == [(r["epoch"], r["test_accuracy"]) for r in records]  # exact resume: same values
    steps = [m.step for m in client.get_metric_history(run_id, "batch_loss")]
    assert sorted(steps) == batch_steps


def test_missing_extra_is_a_validation_error(tmp_path, tiny_protocol) -> None:
    """Without the package, asking for a logger fails before anything runs: one line, exit 2, nothing written."""
    script = ("import sys; sys.modules['tensorboardX'] = None; from aeqprop.cli import main; "
              "sys.exit(main(sys.argv[1:]))")
    out = tmp_path / "run"
    res = subprocess.run([sys.executable, "-c", script, "run", str(tiny_protocol), "--out", str(out), "--tensorboard"],
                         check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 2
    assert res.stderr.count("\n") == 1 and "aeqprop[tensorboard]" in res.stderr and "run" in res.stderr
    assert not out.exists()
    res = subprocess.run([sys.executable, "-c", script.replace("tensorboardX", "mlflow"), "validate",
                          str(tiny_protocol), "--set", "run.mlflow=true"],
                         check=False, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert res.returncode == 2 and "aeqprop[mlflow]" in res.stderr and res.stderr.count("\n") == 1


def test_resume_may_switch_a_logger_on(tmp_path, tiny_protocol, capsys) -> None:
    out = tmp_path / "run"
    base = ["run", str(tiny_protocol), "--no-progress", "--set", "data.train_limit=100"]
    assert main([*base, "--out", str(out), "--set", "run.epochs=1"]) == 0
    assert main([*base, "--resume", str(out), "--set", "run.epochs=2", "--tensorboard"]) == 0
    assert [p.step for p in _events(out, "epoch").Scalars("epoch/test_accuracy")] == [2]


def test_sweep_points_log_too(tmp_path, tiny_protocol, capsys) -> None:
    """A sweep whose protocol asks for TensorBoard gives every point its own event files."""
    out = tmp_path / "sweep"
    assert main(["sweep", str(tiny_protocol), "--grid", "run.seed=1,2", "--set", "run.epochs=2",
                 "--set", "data.train_limit=100", "--set", "run.tensorboard=true", "--out", str(out),
                 "--workers", "1"]) == 0
    points = sorted(p for p in out.iterdir() if (p / "protocol.toml").is_file())
    assert len(points) == 2
    for point in points:
        records = _metrics(point)
        values = [p.value for p in _events(point, "epoch").Scalars("epoch/test_accuracy")]
        np.testing.assert_allclose(values, [r["test_accuracy"] for r in records], rtol=1e-6)


def test_unreachable_tracking_server_is_one_line_and_leaves_nothing(
    tmp_path, tiny_protocol, capsys, monkeypatch
) -> None:
    """A tracking URI nobody answers (a closed port on this machine): exit 2 before training, no run directory."""
    import socket

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "5")
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "run"
    assert main(["run", str(tiny_protocol), "--out", str(out), "--mlflow", f"http://127.0.0.1:{port}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("aeqprop: error: run.mlflow: cannot open the logger")
    assert not out.exists()


class _BrokenSink:
    """A logger whose store went away after it was opened (what a crashed tracking server looks like)."""

    NAME = "Broken"

    def __init__(self) -> None:
        self.calls = 0

    def epoch_scalars(self, step, values):
        self.calls += 1
        raise ConnectionError("server went away\nmore detail")

    params = batch_scalars = histograms = flush = close = epoch_scalars


def test_a_logger_that_fails_mid_run_is_dropped_and_training_goes_on(tmp_path, capsys) -> None:
    from aeqprop.tracking import Tracker
    from tests.conftest import small_network

    broken = _BrokenSink()
    tracker = Tracker([broken], small_network(), log_every=1, histograms=True)
    assert tracker.on_epoch({"epoch": 1, "test_accuracy": 0.5}) is False
    tracker.on_epoch({"epoch": 2, "test_accuracy": 0.6})
    tracker.on_batch(3, {"loss": 1.0})
    assert broken.calls == 1 and tracker.sinks == []
    err = capsys.readouterr().err
    assert err == "aeqprop: warning: Broken logging stopped (ConnectionError: server went away); training goes on\n"


def test_devices_at_the_window_edges_are_logged_per_epoch(tmp_path, capsys) -> None:
    """A crossbar (bounded window): the live edge fractions of the last epoch equal the checkpoint's."""
    from aeqprop.runview import open_run
    from tests.conftest import ROOT

    out = tmp_path / "xbar"
    assert main(["run", str(ROOT / "protocols" / "digits-memristor.toml"), "--out", str(out), "--no-progress",
                 "--set", "run.epochs=2", "--set", "data.train_limit=100", "--set", "data.test_limit=50",
                 "--tensorboard"]) == 0
    epoch = _events(out, "epoch")
    weights = [d for d in open_run(out).devices if d.role == "weight"]
    assert weights
    for dev in weights:
        low, high = dev.at_edges(0.01)
        assert low > 0  # the protocol sticks 0.5 % of the devices at g_min
        assert [p.step for p in epoch.Scalars(f"epoch/{dev.name}_at_low_edge")] == [1, 2]
        assert epoch.Scalars(f"epoch/{dev.name}_at_low_edge")[-1].value == pytest.approx(low)
        assert epoch.Scalars(f"epoch/{dev.name}_at_high_edge")[-1].value == pytest.approx(high)
