"""Training against a board that misbehaves on purpose (pyvisa-py over TCP): every fault stops the run cleanly.

Each case injects one misbehaviour (simulators/virtual/misbehave.py) into a real run and asserts: exit 1 with
one error line and no traceback, the summary says ``failed``, nothing was programmed after the misbehaviour,
every parameter the device held was one the undisturbed run also held, and ``--resume`` against a fresh board
ends equal to the undisturbed run.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from aeqprop.simulators.virtual import TcpServer
from aeqprop.simulators.virtual.faults import Fault, FaultPlan
from aeqprop.simulators.virtual.misbehave import BOARD_KINDS, LINK_KINDS, MisbehavingBoard, Misbehaviour

from aeqprop.cli import main
from aeqprop.protocol import load_protocol, virtual_instrument

from .test_rig_end_to_end import train, write_protocols

# Lines of a run (binary lists, 20 train / 20 test samples, 2 epochs): 12 setup, 1 checkpoint (epoch 0),
# epoch 1 = 60 training + 20 evaluation lines, 1 checkpoint, epoch 2 = lines 95-174 (evaluation from 155),
# checkpoint 175, close 176.
TRAINING_LINE = 130
EVALUATION_LINE = 165


def board(sim: Path, misbehaviours: list[Misbehaviour] | None = None, faults: FaultPlan | None = None,
          port: int = 0) -> TcpServer:
    protocol = load_protocol(sim)
    system_seq = np.random.SeedSequence(protocol.run.seed).spawn(3)[0]
    system = protocol.system.build(np.random.default_rng(system_seq))
    return TcpServer(MisbehavingBoard(system, input_gain_v=protocol.system.input_gain, faults=faults,
                                      misbehaviours=misbehaviours), port=port)


def rig_protocol(folder: Path, resource: str) -> Path:
    _, rig = write_protocols(folder, resource)
    rig.write_text(rig.read_text().replace("timeout_s = 2.0", "timeout_s = 0.5"))
    return rig


@pytest.fixture(scope="module")
def undisturbed(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("undisturbed")
    sim, _ = write_protocols(folder)
    with board(sim) as server:
        result = train(rig_protocol(folder, server.resource), folder / "run")
        result["history"] = server.instrument.history
    assert result["code"] == 0 and result["summary"]["status"] == "completed"
    return result


CASES = [(kind, EVALUATION_LINE if kind == "error-eval" else 1 if kind == "ignore-off" else TRAINING_LINE)
         for kind in BOARD_KINDS] + [(kind, TRAINING_LINE) for kind in LINK_KINDS]


@pytest.mark.parametrize(("kind", "line"), CASES, ids=[k for k, _ in CASES])
def test_misbehaviour_stops_cleanly_and_resume_matches(undisturbed: dict, tmp_path: Path, capsys, kind: str,
                                                       line: int) -> None:
    sim, _ = write_protocols(tmp_path)
    out = tmp_path / "run"
    misbehaviours = [Misbehaviour(kind, line)] if kind in BOARD_KINDS else None
    seconds = 1.0 if kind == "delay" else 0.0
    faults = None if kind in BOARD_KINDS else FaultPlan([Fault(kind, line, seconds)])  # type: ignore[arg-type]
    with board(sim, misbehaviours, faults) as server:
        code = main(["run", str(rig_protocol(tmp_path, server.resource)), "--out", str(out), "--no-progress"])
        device = server.instrument
        log = list(device.log)
        port = server.port
    err = capsys.readouterr().err
    assert code == 1, (kind, err)
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("aeqprop: error: "), err
    assert len(err) < 1000  # replies are quoted within bounds, whatever the board sent
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "failed"
    fired = device.fired[0][1] if kind in BOARD_KINDS else line
    assert kind not in BOARD_KINDS or device.fired, "the misbehaviour never fired"
    # Nothing is programmed after the misbehaviour. An error entry queued after a reply was formed ("error") can
    # only show in the next round trip, whose riding step (computed from checked replies) is then applied; the
    # history check below shows that step was the undisturbed run's own.
    after = log[fired + 1:] if kind == "error" else log[fired:]
    assert not [x for x in after if x.startswith("PROG:")], "programmed after the misbehaviour"
    for step, params in enumerate(device.history):  # every state the device went through was a correct one
        assert np.array_equal(params, undisturbed["history"][step]), step
    # A fresh, honest board at the same resource: resume reprograms the checkpoint and re-runs the epoch.
    with board(sim, port=port) as server:
        resumed = train(rig_protocol(tmp_path, server.resource), out, "--resume", str(out))
    assert resumed["code"] == 0 and resumed["summary"]["status"] == "completed"
    assert resumed["summary"]["test_accuracy"] == undisturbed["summary"]["test_accuracy"]
    for name, value in undisturbed["params"].items():
        np.testing.assert_allclose(resumed["params"][name], value, rtol=1e-7, atol=1e-10, err_msg=name)


def test_seeded_board_draws_kind_and_line(tmp_path: Path) -> None:
    """The seeded factory is reproducible and covers both families of faults."""
    sim, _ = write_protocols(tmp_path)
    protocol = load_protocol(sim)
    drawn = set()
    for seed in range(40):
        a = MisbehavingBoard.seeded(protocol.system.build(np.random.default_rng(0)), seed, (100, 120))
        b = MisbehavingBoard.seeded(protocol.system.build(np.random.default_rng(0)), seed, (100, 120))
        assert (a.misbehaviours, a.faults.faults) == (b.misbehaviours, b.faults.faults)
        drawn |= {m.kind for m in a.misbehaviours} | {f.kind for f in a.faults.faults}
        assert all(100 <= m.at <= 120 for m in a.misbehaviours)
    assert len(drawn) >= 12 and drawn & set(LINK_KINDS) and drawn & set(BOARD_KINDS)
    assert virtual_instrument  # the honest board of `aeqprop serve` is the same class without misbehaviours


def test_fault_while_resume_reprograms_is_a_failed_run(undisturbed: dict, tmp_path: Path, capsys) -> None:
    """A read-back that disagrees while ``--resume`` reprograms the checkpoint (PROG:SET) exits 1, not 2, and the
    summary says failed; the checkpoint is untouched, so the next --resume succeeds."""
    sim, _ = write_protocols(tmp_path)
    out = tmp_path / "run"
    with board(sim, [Misbehaviour("nan", TRAINING_LINE)]) as server:
        assert main(["run", str(rig_protocol(tmp_path, server.resource)), "--out", str(out), "--no-progress"]) == 1
        port = server.port
    capsys.readouterr()
    with board(sim, [Misbehaviour("drift", 13)], port=port) as server:  # line 13: PROG:SET <b>;:PAR?;:SYST:ERR?
        rig = rig_protocol(tmp_path, server.resource)
        assert main(["run", str(rig), "--resume", str(out), "--no-progress"]) == 1
        assert server.instrument.log[12].startswith("PROG:SET ") and server.instrument.fired == [("drift", 13)]
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "was programmed" in err and "Traceback" not in err
    assert json.loads((out / "summary.json").read_text())["status"] == "failed"
    with board(sim, port=port) as server:
        resumed = train(rig_protocol(tmp_path, server.resource), out, "--resume", str(out))
    assert resumed["code"] == 0 and resumed["summary"]["test_accuracy"] == undisturbed["summary"]["test_accuracy"]
