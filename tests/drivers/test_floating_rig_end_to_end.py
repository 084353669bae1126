"""Agnostic EP in the loop: pyvisa-py over TCP to a virtual floating board served by ``aeqprop serve``'s code.

The board serves the same floating Hopfield network (same seed) the direct run trains, with exact reads, so
any difference in the final parameters would come from the hardware path: formatting, transport, driver, rig.
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
kind = "hopfield-floating"
inputs = 64
hidden = [16]
outputs = 10
tol = 1e-9
tol_param = 1e-10
[algorithm]
kind = "aeqprop"
variant = "centered"
beta = 1.0
eps = [0.02, 0.01]
eps_bias = 0.01
[algorithm.homeostasis]
tolerance = 1e-7
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
kind = "floating-rig"
inputs = 64
outputs = 10
resource = "{resource}"
transport = "{transport}"
data_format = "{data_format}"
timeout_s = 2.0
input_gain_v = 1.0
knob_window = [{low}, 5.0]
[system.limits]
max_voltage_v = 5.0
max_current_a = 1e-3
"""


def write_protocols(folder: Path, resource: str = "", transport: str = "visa", train: int = 12, test: int = 12,
                    epochs: int = 2, data_format: str = "hex", low: float = -5.0) -> tuple[Path, Path]:
    """A simulator protocol and the floating-rig protocol that trains the served copy of it."""
    sim_text = SIM.format(train=train, test=test, epochs=epochs)
    sim = folder / "sim.toml"
    sim.write_text(sim_text)
    _, tail = sim_text.split("[algorithm]", 1)
    rig = folder / "rig.toml"
    rig.write_text("version = 1\n" + RIG.format(resource=resource, transport=transport, data_format=data_format,
                                                low=low) + "[algorithm]" + tail)
    return sim, rig


@contextmanager
def served(sim: Path, transport: str = "tcp", faults: str | None = None):
    server = virtual_instrument(load_protocol(sim), transport, "127.0.0.1", 0, faults).start()
    try:
        yield server
    finally:
        server.stop()


def train(protocol: Path, out: Path, *extra: str) -> dict:
    code = main(["run", str(protocol), "--no-progress", *extra] + ([] if "--resume" in extra else ["--out", str(out)]))
    with np.load(out / "checkpoint.npz") as data:
        params = {k: data[k] for k in data.files if k.startswith("param.")}
    summary = json.loads((out / "summary.json").read_text())
    return {"code": code, "params": params, "summary": summary}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("floating")
    sim, _ = write_protocols(folder)
    direct = train(sim, folder / "direct")
    with served(sim) as server:
        _, rig = write_protocols(folder, server.resource)
        via_tcp = train(rig, folder / "tcp")
    return {"direct": direct, "tcp": via_tcp}


def test_aeqprop_over_visa_tcp_equals_the_simulator(reference: dict) -> None:
    """Digits by Aeqprop through pyvisa-py/TCP ends with the simulator's parameters (zero difference) and accuracy."""
    direct, via_tcp = reference["direct"], reference["tcp"]
    assert direct["code"] == via_tcp["code"] == 0
    assert sorted(direct["params"]) == sorted(via_tcp["params"])
    for name, value in direct["params"].items():
        assert np.array_equal(value, via_tcp["params"][name]), name
    assert via_tcp["summary"]["test_accuracy"] == direct["summary"]["test_accuracy"]
    assert via_tcp["summary"]["train_loss"] == direct["summary"]["train_loss"]


def test_knob_outside_its_window_is_refused_before_sending(tmp_path: Path) -> None:
    """A knob value outside knob_window raises LimitViolation and no CTRL:KNOB line reaches the board."""
    sim, _ = write_protocols(tmp_path)
    with served(sim) as server:
        _, rig = write_protocols(tmp_path, server.resource, low=-0.01)
        system = build(load_protocol(rig)).system
        try:
            before = len(server.instrument.log)
            u = system.read_params()
            u["w1"] = u["w1"] - 1.0
            with pytest.raises(LimitViolation, match=r"knob value .* outside the knob window \[-0.01, 5.0\]"):
                system.set_controls(u)
            assert not any("CTRL:KNOB " in line for line in server.instrument.log[before:])
        finally:
            system.close()


def test_fault_stops_with_checkpoint_and_resume_continues(reference: dict, tmp_path: Path, capsys) -> None:
    """A garbled reply in epoch 2 stops the run (exit 1, one line naming the checkpoint); --resume finishes it
    near the undisturbed run (the board's analog state and the homeostat's point inside its tolerance are not
    part of a checkpoint, only the knobs and coupling are)."""
    sim, _ = write_protocols(tmp_path)
    out = tmp_path / "run"
    with served(sim) as probe:
        _, rig = write_protocols(tmp_path, probe.resource, epochs=1)
        train(rig, tmp_path / "probe")
        lines_epoch1 = len(probe.instrument.log)
    with served(sim, faults=f"garble@{lines_epoch1 + 40}") as server:
        _, rig = write_protocols(tmp_path, server.resource)
        assert main(["run", str(rig), "--out", str(out), "--no-progress"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("aeqprop: error: InstrumentFault: floating: "), err
        assert f"last checkpoint after epoch 1; continue with --resume {out}" in err[-1]
        resumed = train(rig, out, "--resume", str(out))
    assert resumed["code"] == 0 and resumed["summary"]["epochs"] == 2
    for name, value in reference["tcp"]["params"].items():
        np.testing.assert_allclose(resumed["params"][name], value, atol=1e-5, err_msg=name)


def test_aeqprop_over_a_serial_pty_equals_the_simulator(tmp_path: Path) -> None:
    """The same dialect as a serial line protocol (decimal lists), pyserial to a pty: identical parameters."""
    sim, _ = write_protocols(tmp_path, train=6, test=6, epochs=1)
    direct = train(sim, tmp_path / "direct")
    with served(sim, "pty") as server:
        _, rig = write_protocols(tmp_path, server.resource, "serial", train=6, test=6, epochs=1, data_format="ascii")
        via_pty = train(rig, tmp_path / "pty")
    assert via_pty["code"] == 0
    for name, value in direct["params"].items():
        assert np.array_equal(value, via_pty["params"][name]), name
    assert via_pty["summary"]["test_accuracy"] == direct["summary"]["test_accuracy"]
