"""Training through the real stacks: pyvisa-py over TCP and pyserial over a pty, to a virtual crossbar board.

The virtual board serves the same simulated network (same seed) that the direct runs train, so any difference
in the final parameters comes from the hardware path: formatting, transport, driver or rig.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from aeqprop.cli import main
from aeqprop.protocol import build, load_protocol, virtual_instrument
from aeqprop.system import LimitViolation

SIM = """
version = 1
[system]
kind = "resistive"
inputs = 64
hidden = [8]
outputs = 10
input_gain = 4.0
tol_v = 1e-10
# the served board programs increments (no fused step), so the direct run takes the same separate path
offers = ["local", "program", "stepwise"]
[algorithm]
kind = "ep"
estimator = "centered"
beta = 0.5
[optimizer]
kind = "sgd"
lr = 0.05
[data]
name = "digits"
train_limit = {train}
test_limit = {test}
[run]
epochs = {epochs}
seed = 7
batch_size = 1
eval_batch_size = 1
"""

RIG = """
[system]
kind = "rig"
inputs = 64
outputs = 10
resource = "{resource}"
transport = "{transport}"
data_format = "{data_format}"
timeout_s = 2.0
input_gain_v = 4.0
pulse_amplitude_v = {pulse}
pulse_width_s = 1e-4
[system.limits]
max_voltage_v = 5.0
max_current_a = 1e-3
max_pulse_v = 2.0
"""


def write_protocols(folder: Path, resource: str = "", transport: str = "visa", pulse: float = 1.0,
                    train: int = 20, test: int = 20, epochs: int = 2, data_format: str = "binary") -> tuple[Path, Path]:
    """A simulator protocol and the rig protocol that trains the served copy of it."""
    sim_text = SIM.format(train=train, test=test, epochs=epochs)
    sim = folder / "sim.toml"
    sim.write_text(sim_text)
    _, tail = sim_text.split("[algorithm]")
    rig = folder / "rig.toml"
    rig.write_text("version = 1\n"
                   + RIG.format(resource=resource, transport=transport, pulse=pulse, data_format=data_format)
                   + "[algorithm]" + tail)
    return sim, rig


@contextmanager
def served(sim: Path, transport: str = "tcp", faults: str | None = None):
    server = virtual_instrument(load_protocol(sim), transport, "127.0.0.1", 0, faults).start()
    try:
        yield server
    finally:
        server.stop()


def train(protocol: Path, out: Path, *extra: str) -> dict:
    """Run the CLI in-process; return the exit code, the final parameters and the summary."""
    code = main(["run", str(protocol), "--no-progress", *extra] + ([] if "--resume" in extra else ["--out", str(out)]))
    with np.load(out / "checkpoint.npz") as data:
        params = {k: data[k] for k in data.files if k.startswith("param.")}
    summary = json.loads((out / "summary.json").read_text())
    return {"code": code, "params": params, "summary": summary}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The direct simulator run and an undisturbed run through pyvisa-py/TCP, shared by the tests below."""
    folder = tmp_path_factory.mktemp("reference")
    sim, _ = write_protocols(folder)
    direct = train(sim, folder / "direct")
    with served(sim) as server:
        _, rig = write_protocols(folder, server.resource)
        via_tcp = train(rig, folder / "tcp")
        lines = len(server.instrument.log)
    return {"direct": direct, "tcp": via_tcp, "lines": lines}


def test_training_over_visa_tcp_equals_the_simulator(reference: dict) -> None:
    """pyvisa-py over TCP to the virtual board ends with bit-identical parameters and the same accuracy."""
    direct, via_tcp = reference["direct"], reference["tcp"]
    assert direct["code"] == via_tcp["code"] == 0
    assert sorted(direct["params"]) == sorted(via_tcp["params"])
    for name, value in direct["params"].items():
        assert np.array_equal(value, via_tcp["params"][name]), name
    assert via_tcp["summary"]["test_accuracy"] == direct["summary"]["test_accuracy"]
    assert via_tcp["summary"]["train_loss"] == direct["summary"]["train_loss"]
    # It learned something from 2 x 20 samples: the training loss ends below what a rule that learns nothing
    # reaches. Measured: 0.433 trained, 0.478 with optimizer.lr = 0; test accuracy on 20 samples does not
    # separate them (0.20 both), so it is no floor.
    assert via_tcp["summary"]["train_loss"] < 0.455


def test_round_trips_per_sample(reference: dict) -> None:
    """A centered-EP sample costs 3 round trips (3 settles carrying their reads and read-backs; the programming
    step and its parameter read-back ride in front of the next one), inference 1; checkpoints at epochs 0, 1, 2."""
    setup, checkpoints, close = 12, 3, 1
    assert reference["lines"] == setup + 2 * (20 * 3 + 20 * 1) + checkpoints + close


def test_training_over_a_serial_pty_equals_the_simulator(tmp_path: Path) -> None:
    """The same commands as a serial line protocol (decimal lists), pyserial to a pty: identical parameters."""
    sim, _ = write_protocols(tmp_path, train=10, test=10, epochs=1)
    direct = train(sim, tmp_path / "direct")
    with served(sim, "pty") as server:
        _, rig = write_protocols(tmp_path, server.resource, "serial", train=10, test=10, epochs=1, data_format="ascii")
        via_pty = train(rig, tmp_path / "pty")
    for name, value in direct["params"].items():
        assert np.array_equal(value, via_pty["params"][name]), name
    assert via_pty["summary"]["test_accuracy"] == direct["summary"]["test_accuracy"]


def test_protocol_beyond_a_limit_sends_nothing(tmp_path: Path, capsys) -> None:
    """A pulse amplitude above max_pulse_v fails with one line and the instrument's log stays empty."""
    sim, _ = write_protocols(tmp_path)
    with served(sim) as server:
        _, rig = write_protocols(tmp_path, server.resource, pulse=2.5)
        assert main(["run", str(rig), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
        assert main(["validate", str(rig)]) == 2
        assert server.instrument.log == []
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "pulse amplitude 2.5 V exceeds the limit ±2.0 V" in err[0]


def test_runtime_limit_violation_reaches_no_instrument(tmp_path: Path) -> None:
    """Through the real stack, an input beyond max_voltage_v raises before any byte is sent for it."""
    sim, _ = write_protocols(tmp_path)
    with served(sim) as server:
        _, rig = write_protocols(tmp_path, server.resource)
        system = build(load_protocol(rig)).system
        try:
            before = list(server.instrument.log)
            with pytest.raises(LimitViolation, match="input voltage 6.0 V exceeds the limit ±5.0 V"):
                system.clamp(np.full((1, 64), 1.5))
            system.clamp(np.zeros((1, 64)))
            system.nudge(0.0)
            system.relax()
            new = server.instrument.log[len(before):]
        finally:
            system.close()
    assert new == [(b"INP:LEV #3512" + bytes(512) + b";:INP:LEV?;:OUTP:NUDG 0.0;:OUTP:NUDG?;:INIT;:STAT:SETT?;"
                   b":MEAS:OUT? 1;:SYST:ERR?").decode("latin-1")]


# Line 140 falls in epoch 2 (12 setup lines, 1 checkpoint read, 80 per epoch, 1 checkpoint read).
@pytest.mark.parametrize("fault", ["garble@140", "error@140", pytest.param("disconnect@140", marks=pytest.mark.slow),
                                   pytest.param("drop@140", marks=pytest.mark.slow)])  # these two wait out timeouts
def test_fault_stops_with_checkpoint_and_resume_matches(reference: dict, tmp_path: Path, capsys, fault: str) -> None:
    """A fault mid-epoch stops the run with one error line and the epoch-1 checkpoint; --resume then finishes
    with the undisturbed run's accuracy and parameters (to the relaxation tolerance: the board's analog state
    is not part of a checkpoint, only its programmed parameters are)."""
    sim, _ = write_protocols(tmp_path)
    out = tmp_path / "run"
    with served(sim, faults=fault) as server:
        _, rig = write_protocols(tmp_path, server.resource)
        assert main(["run", str(rig), "--out", str(out), "--no-progress"]) == 1  # a failed run, not bad input
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("aeqprop: error: InstrumentFault: crossbar: "), err
        assert f"last checkpoint after epoch 1; continue with --resume {out}" in err[-1]
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "failed" and summary["checkpoint_epoch"] == 1
        resumed = train(rig, out, "--resume", str(out))
    assert resumed["code"] == 0 and resumed["summary"]["epochs"] == 2
    undisturbed = reference["tcp"]
    assert resumed["summary"]["test_accuracy"] == undisturbed["summary"]["test_accuracy"]
    for name, value in undisturbed["params"].items():
        np.testing.assert_allclose(resumed["params"][name], value, rtol=1e-7, atol=1e-10, err_msg=name)


def test_bench_on_a_rig_switches_the_outputs_off_again(tmp_path: Path, capsys) -> None:
    """`aeqprop bench fidelity` builds the rig (outputs on) and, with no oracle, measures the gradient by the
    hardware's own means; here the board refuses the centered estimator's negative nudge (an instrument fault):
    one line, exit 1, and the board's outputs are off again (confirmed) before it returns."""
    sim, _ = write_protocols(tmp_path)
    with served(sim) as server:
        _, rig = write_protocols(tmp_path, server.resource)
        code = main(["bench", "fidelity", str(rig), "--samples", "1"])
        board = server.instrument
        assert code == 1 and board.log[-1] == "OUTP:STAT OFF;:OUTP:STAT?;:SYST:ERR?"
        assert board.process("OUTP:STAT?").text == "0"
    assert capsys.readouterr().err.count("\n") == 1
