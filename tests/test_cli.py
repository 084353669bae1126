"""End-to-end: the installed ``aeqprop`` command validates, runs, resumes and plots."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from aeqprop.cli import main

from .conftest import ROOT

PASS = sorted((Path(__file__).parent / "protocols" / "pass").glob("*.toml"))
FAIL = sorted((Path(__file__).parent / "protocols" / "fail").glob("*.toml"))
#: Shipped protocols that read what an earlier command writes (docs/chip-bringup.md validates them after it).
NEEDS_OUTPUTS = {"chip-twin.toml"}
SHIPPED = sorted(p for p in (ROOT / "protocols").glob("*.toml") if p.name not in NEEDS_OUTPUTS)


@pytest.mark.parametrize("path", PASS + SHIPPED, ids=lambda p: p.name)
def test_valid_protocols_validate(path, capsys) -> None:
    assert main(["validate", str(path)]) == 0
    assert ": ok (" in capsys.readouterr().out


@pytest.mark.parametrize("path", FAIL, ids=lambda p: p.stem)
def test_invalid_protocols_fail_with_one_line(path, capsys) -> None:
    """Each failing fixture names the file and states its expected reason on a single stderr line."""
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith(f"aeqprop: error: {path}")
    assert expected in err


def test_invalid_protocol_writes_nothing(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    assert main(["run", str(FAIL[0]), "--out", str(out)]) == 2
    assert not out.exists()


def test_set_overrides_are_validated(tiny_protocol, capsys) -> None:
    assert main(["validate", str(tiny_protocol), "--set", "run.epochs=5",
                 "--set", "algorithm.estimator=one-sided"]) == 0
    assert "5 epochs" in capsys.readouterr().out
    assert main(["validate", str(tiny_protocol), "--set", "algorithm.beta=0"]) == 2
    assert "beta must be nonzero" in capsys.readouterr().err


def test_missing_data_file_is_one_line_error(tmp_path, tiny_protocol, capsys, monkeypatch) -> None:
    monkeypatch.setenv("AEQPROP_DATA", str(tmp_path))
    code = main(["run", str(tiny_protocol), "--set", "data.name=mnist", "--set", "system.inputs=784",
                 "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert "missing data file" in err and "train-images-idx3-ubyte" in err
    assert not (tmp_path / "run").exists()


def test_run_writes_log_summary_checkpoint_and_plot(tmp_path, tiny_protocol, capsys) -> None:
    """A short run leaves a complete run directory and learns far above chance (10 %)."""
    out = tmp_path / "run"
    assert main(["run", str(tiny_protocol), "--out", str(out), "--no-progress"]) == 0
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["epoch"] for l in lines] == [1, 2, 3]
    for key in ("train_loss", "train_accuracy", "test_accuracy", "wall_s"):
        assert all(isinstance(l[key], float) for l in lines)
    summary = json.loads((out / "summary.json").read_text())
    for key in ("test_accuracy", "train_accuracy", "epochs", "wall_s", "samples_per_s", "seed", "versions"):
        assert key in summary
    assert summary["epochs"] == 3 and summary["seed"] == 7 and summary["status"] == "completed"
    assert summary["test_accuracy"] > 0.8
    assert lines[-1]["train_loss"] < lines[0]["train_loss"]
    assert (out / "checkpoint.npz").is_file()
    assert "kind = \"resistive\"" in (out / "protocol.toml").read_text()
    assert main(["plot", str(out)]) == 0
    png = (out / "learning_curve.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_existing_run_directory_is_not_overwritten(tmp_path, tiny_protocol, capsys) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "precious.txt").write_text("keep")
    assert main(["run", str(tiny_protocol), "--out", str(out)]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "precious.txt").read_text() == "keep"


def test_resume_refuses_a_different_protocol(tmp_path, tiny_protocol, capsys) -> None:
    out = tmp_path / "run"
    assert main(["run", str(tiny_protocol), "--out", str(out), "--set", "run.epochs=1", "--no-progress"]) == 0
    assert main(["run", str(tiny_protocol), "--resume", str(out), "--set", "algorithm.beta=0.25"]) == 2
    assert "algorithm.beta is 0.25 here but 0.5" in capsys.readouterr().err


def _params(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoint.npz") as data:
        return {k: data[k] for k in data.files if k.startswith("param.")}


#: The run killed below, as a child process: the real CLI, which pauses in the middle of its third epoch (after
#: the second epoch's metrics and a few more relaxations), says so on stdout and waits to be killed. The kill
#: then lands at a known point instead of racing the run to its end.
_PAUSING_RUN = """
import sys
from pathlib import Path
from aeqprop.cli import main
from aeqprop.simulators.resistive import ResistiveNetwork

metrics, clamp, after = Path(sys.argv[1]) / "metrics.jsonl", ResistiveNetwork.clamp, []

def pausing_clamp(self, x):
    if metrics.is_file() and len(metrics.read_text().splitlines()) >= 2:
        after.append(1)
        if len(after) == 7:
            print("paused", flush=True)
            sys.stdin.read()  # the test holds this pipe open and kills the process
    return clamp(self, x)

ResistiveNetwork.clamp = pausing_clamp
sys.exit(main(["run", *sys.argv[2:], "--out", sys.argv[1]]))
"""


@pytest.mark.slow
def test_killed_run_resumes_to_identical_parameters(tmp_path, tiny_protocol, aeqprop_cmd) -> None:
    """SIGKILL a real run in its third epoch; --resume ends with the parameters of an uninterrupted run."""
    common = ["--set", "run.epochs=12", "--no-progress"]
    whole, broken = tmp_path / "whole", tmp_path / "broken"
    subprocess.run([*aeqprop_cmd, "run", str(tiny_protocol), "--out", str(whole), *common],
                   check=True, capture_output=True, cwd=tmp_path, timeout=300)
    proc = subprocess.Popen([sys.executable, "-c", _PAUSING_RUN, str(broken), str(tiny_protocol), *common],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            cwd=tmp_path)
    try:
        assert proc.stdout is not None
        lines = iter(proc.stdout.readline, "")
        assert "paused" in (line.strip() for line in lines), "the run ended without reaching its third epoch"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    metrics = broken / "metrics.jsonl"
    assert len(metrics.read_text().splitlines()) == 2
    resumed = subprocess.run([*aeqprop_cmd, "run", str(tiny_protocol), "--resume", str(broken), *common],
                             capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout
    a, b = _params(whole), _params(broken)
    assert a.keys() == b.keys() and a
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)
    epochs = [json.loads(l)["epoch"] for l in metrics.read_text().splitlines()]
    assert epochs == list(range(1, 13))


def test_progress_bar_only_on_a_terminal(tmp_path, tiny_protocol, aeqprop_cmd) -> None:
    """Piped output carries epoch lines but no progress-bar redraws."""
    res = subprocess.run([*aeqprop_cmd, "run", str(tiny_protocol), "--out", str(tmp_path / "r"),
                          "--set", "run.epochs=1"],
                         capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "epoch 1/1" in res.stdout
    assert "\r" not in res.stderr and "batch/s" not in res.stderr


@pytest.mark.slow
def test_shipped_digits_protocol_reaches_97_percent(tmp_path, aeqprop_cmd) -> None:
    """The README's main job: >= 97 % on the held-out 20 % of digits."""
    res = subprocess.run([*aeqprop_cmd, "run", str(ROOT / "protocols" / "digits.toml"), "--out", str(tmp_path / "d")],
                         capture_output=True, text=True, cwd=tmp_path, timeout=900)
    assert res.returncode == 0, res.stderr
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["test_accuracy"] >= 0.97, summary


def test_fault_during_training_stops_with_checkpoint_and_exit_1(tmp_path, tiny_protocol, capsys) -> None:
    """A relaxation that cannot settle mid-run stops the run: one line, exit 1, summary 'failed', no update lost.

    ``max_sweeps=3`` with a tight tolerance makes the first relaxation fail: only the epoch-0 checkpoint (taken
    before the first update) exists, and the message names it; the summary records the failure.
    """
    out = tmp_path / "run"
    code = main(["run", str(tiny_protocol), "--out", str(out), "--no-progress",
                 "--set", "system.max_sweeps=3", "--set", "system.tol_v=1e-12"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and "\n" not in err
    assert "NotSettled" in err and "last checkpoint after epoch 0" in err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed" and "did not settle" in summary["error"]
