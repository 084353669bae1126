"""A rig of SMUs and a 707B trains through pyvisa-py over TCP, one port per virtual instrument on 127.0.0.1.

The bench (``aeqprop.simulators.virtual.SmuBench``) wires virtual 2450s and a 707B to the same simulated
network (same seed) that the direct run trains, so any difference in the final parameters comes from the
hardware path: drivers, matrix routing, per-device voltage drops, pulse programming, formatting, transport.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from aeqprop.cli import main
from aeqprop.protocol import build, load_protocol, virtual_bench
from aeqprop.system import LimitViolation

SIM = """
version = 1
[system]
kind = "resistive"
inputs = 4
hidden = [4]
outputs = 3
input_gain = 2.0
g_min = 0.01
tol_v = 1e-10
# the phases one after another, as the rig runs them ("phases" would settle them side by side from another
# start: the same equilibria within tol_v, not to float precision)
offers = ["local", "program", "stepwise", "contrast"]
[algorithm]
kind = "ep"
estimator = "one-sided"
beta = 0.5
[optimizer]
kind = "sgd"
lr = 0.1
[data]
name = "iris"
train_limit = {train}
test_limit = {test}
[run]
epochs = {epochs}
seed = 3
batch_size = 1
eval_batch_size = 1
"""

RIG = """
[system]
kind = "smu-rig"
inputs = 4
hidden = [4]
outputs = 3
sources = {sources}
nudge = {nudge}
bias = {bias}
meter = "{meter}"
pulser = "{pulser}"
matrix = "{matrix}"
timeout_s = 2.0
input_gain_v = {gain}
nudge_conductance_s = 0.5
compliance_a = 5.0
pulse_width_s = 1e-3
device_rate_s_per_vs = 100.0
device_threshold_v = 0.5
[system.limits]
max_voltage_v = 5.0
max_current_a = 5.0
max_pulse_v = 3.0
"""

#: The last line each instrument receives when the rig closes: SMU output off, or every relay open.
OFF = {False: ":OUTP OFF", True: 'channel.open("allslots")'}


def write_protocols(folder: Path, resources: dict[str, str] | None = None, gain: float = 2.0, train: int = 48,
                    test: int = 30, epochs: int = 1) -> tuple[Path, Path]:
    """The simulator protocol and the rig protocol that trains the bench's copy of it."""
    sim_text = SIM.format(train=train, test=test, epochs=epochs)
    sim = folder / "sim.toml"
    sim.write_text(sim_text)
    r = resources or {}
    pick = lambda prefix: json.dumps([v for k, v in r.items() if k.startswith(prefix)])  # noqa: E731
    rig_text = RIG.format(sources=pick("source"), nudge=pick("nudge"), bias=pick("bias"), meter=r.get("meter", "x"),
                          pulser=r.get("pulser", "x"), matrix=r.get("matrix", "x"), gain=gain)
    rig = folder / "rig.toml"
    rig.write_text("version = 1\n" + rig_text + "[algorithm]" + sim_text.split("[algorithm]")[1])
    return sim, rig


@contextmanager
def served(sim: Path, faults: str | None = None, fault_on: str = "matrix"):
    """The bench for ``sim``, every instrument on its own free 127.0.0.1 port; yields (bench, resources)."""
    bench, servers = virtual_bench(load_protocol(sim), "127.0.0.1", 0, faults, fault_on)
    for server in servers:
        server.start()
    try:
        yield bench, {name: s.resource for name, s in zip(bench.instruments(), servers, strict=True)}
    finally:
        for server in servers:
            server.stop()


def eventually(predicate, within_s: float = 30.0) -> bool:
    """Wait for the server threads to act on write-only lines; True as soon as ``predicate`` holds.

    The bound only stops a hang: it is no timing window (a loaded machine just makes the wait longer).
    """
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def train(protocol: Path, out: Path) -> dict:
    code = main(["run", str(protocol), "--no-progress", "--out", str(out)])
    with np.load(out / "checkpoint.npz") as data:
        params = {k: data[k] for k in data.files if k.startswith("param.")}
    return {"code": code, "params": params, "summary": json.loads((out / "summary.json").read_text())}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """A direct simulator run and the same protocol through the SMU rig, shared by the tests below."""
    folder = tmp_path_factory.mktemp("smu-rig")
    sim, _ = write_protocols(folder)
    direct = train(sim, folder / "direct")
    with served(sim) as (bench, resources):
        _, rig = write_protocols(folder, resources)
        via_rig = train(rig, folder / "rig")
        instruments = bench.instruments()
        eventually(lambda: all(i.log and i.log[-1] == OFF[name == "matrix"] for name, i in instruments.items()))
        logs = {name: list(instrument.log) for name, instrument in instruments.items()}
    return {"direct": direct, "rig": via_rig, "relaxations": bench.relaxations, "logs": logs,
            "violations": list(bench.violations)}


@pytest.mark.slow
def test_smu_rig_training_equals_the_simulator(runs: dict) -> None:
    """Every conductance and bias ends equal to float precision, with the same accuracy and loss."""
    direct, via_rig = runs["direct"], runs["rig"]
    assert direct["code"] == via_rig["code"] == 0
    assert sorted(direct["params"]) == sorted(via_rig["params"]) == ["param.b1", "param.b2", "param.g1", "param.g2"]
    for name, value in direct["params"].items():
        np.testing.assert_allclose(via_rig["params"][name], value, rtol=1e-12, atol=1e-14, err_msg=name)
        assert not np.array_equal(value, load_initial(name)), f"{name} never changed"
    assert via_rig["summary"]["test_accuracy"] == direct["summary"]["test_accuracy"] > 0.5  # chance is 1/3
    assert via_rig["summary"]["train_loss"] == pytest.approx(direct["summary"]["train_loss"], rel=1e-12)


def load_initial(name: str) -> np.ndarray:
    """The network's parameters before training (drawn from the same seed)."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        sim, _ = write_protocols(Path(folder))
        return build(load_protocol(sim)).system.read_params()[name.removeprefix("param.")]


@pytest.mark.slow
def test_bench_settles_exactly_when_the_simulator_relaxes(runs: dict) -> None:
    """One settling per phase: free + nudged per training sample, free per test sample; nothing in between."""
    assert runs["relaxations"] == 48 * 2 + 30


@pytest.mark.slow
def test_instruments_are_used_as_wired(runs: dict) -> None:
    """Sources take levels, the meter only reads, the pulser pulses, every instrument ends with its output off."""
    logs = runs["logs"]
    assert sum(line.startswith(":SOUR:VOLT ") for line in logs["source0"]) >= 48
    assert any(line.startswith(":SOUR:CURR ") and line != ":SOUR:CURR 0.0" for line in logs["bias0"])
    assert logs["meter"][:2] == ["*CLS", "*IDN?"] and logs["matrix"][:2] == ["*CLS", "*IDN?"]
    assert {line for line in logs["meter"][9:-1]} == {":READ?", ":OUTP ON", "*OPC?", ":SYST:ERR?"}
    assert any(line.startswith("channel.exclusiveclose(") and '"1C' in line for line in logs["matrix"])
    for name, log in logs.items():
        assert log[-1] == OFF[name == "matrix"], name


def test_training_never_harms_a_device(runs: dict) -> None:
    """The bench enforces the physics a real bench would punish (hot switching, two sources on one line, output on
    without compliance, autorange or an over-long pulse): a whole training run triggers none of them."""
    assert runs["violations"] == []


def test_sequences_are_safe_by_construction(runs: dict) -> None:
    """The command logs read against the manuals: the pulser pulses only from 0 V on a fixed range with delay and
    aperture set (one compound on/read/off), an input source is off while the pulser can reach its line, the
    nudge sources are at 0 V whenever their relays switch, and at close every SMU is off before the relays open."""
    logs = runs["logs"]
    pulser = logs["pulser"]
    pulses = [k for k, line in enumerate(pulser) if line == ":OUTP ON;:READ?;:OUTP OFF"]
    assert pulses and ":OUTP ON" not in pulser
    for k in pulses:
        assert pulser[k - 4].startswith(":SENS:CURR:RANG ") and pulser[k - 3] == ":SENS:CURR:NPLC 0.025"
        assert pulser[k - 2] == ":SOUR:VOLT:DEL 0.0005" and pulser[k + 1] == ":SOUR:VOLT 0.0"
    source0 = logs["source0"]
    assert [line for line in source0 if line.startswith(":OUTP")][:2] == [":OUTP ON", ":OUTP OFF"]
    off = source0.index(":OUTP OFF")
    assert source0[off - 1] == ":SOUR:VOLT 0.0"  # to 0 V, then off, before the pulser is routed onto line 0
    for k in range(3):
        nudge = [line for line in logs[f"nudge{k}"] if line.startswith(":SOUR:VOLT ")]
        assert nudge.count(":SOUR:VOLT 0.0") >= 48  # back to 0 V after every nudged phase


def test_bench_reports_what_would_harm_a_device(tmp_path: Path) -> None:
    """The old sequences are caught: a pulse onto an input line whose source is on, relays switched with a nudge
    source at its target, an output switched on without a compliance."""
    sim, _ = write_protocols(tmp_path)
    bench, _ = virtual_bench(load_protocol(sim), "127.0.0.1", 0, None, "matrix")
    source, pulser, nudge, matrix = bench.sources[0], bench.pulser, bench.nudgers[0], bench.matrix
    assert source.process(":OUTP ON").text is None and not source.output  # no compliance yet
    assert source.process(":SYST:ERR?").text.startswith("-221")
    for line in ("*RST", ":SOUR:VOLT:ILIM 0.001", ":OUTP ON", ":SOUR:VOLT 1.0"):
        source.process(line)
    for line in ("*RST", ":SOUR:VOLT:ILIM 0.001", ":SENS:CURR:RANG 0.001", ":SENS:CURR:NPLC 0.025",
                 ":SOUR:VOLT:DEL 0.0005", ":SOUR:VOLT 1.5"):
        pulser.process(line)
    matrix.process('channel.exclusiveclose("1C01,2D01")')
    assert pulser.process(":OUTP ON;:READ?;:OUTP OFF").text == "9.9E+37"
    assert bench.violations == ["source contention on input line 0"]
    for line in ("*RST", ":SOUR:VOLT:ILIM 0.001", ":OUTP ON", ":SOUR:VOLT 0.5"):
        nudge.process(line)
    matrix.process('channel.exclusiveclose("3E01")')
    assert bench.violations[-1].startswith("hot switching on rows E")
    assert matrix.process("print(errorqueue.next())").text.startswith("-2.00000e+02\tExecution error; hot switching")


def test_protocol_beyond_a_limit_sends_nothing(tmp_path: Path, capsys) -> None:
    """An input gain whose device drops exceed max_voltage_v fails validation; no instrument sees a line."""
    sim, _ = write_protocols(tmp_path)
    with served(sim) as (bench, resources):
        _, rig = write_protocols(tmp_path, resources, gain=3.0)
        assert main(["validate", str(rig)]) == 2
        assert main(["run", str(rig), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
        assert all(instrument.log == [] for instrument in bench.instruments().values())
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "largest device drop 6.0 V exceeds the limit ±5.0 V" in err[0]


def test_runtime_limit_violation_reaches_no_instrument(tmp_path: Path) -> None:
    """A programming step that would push a bias source beyond max_current_a raises before any line is sent."""
    sim, _ = write_protocols(tmp_path)
    with served(sim) as (bench, resources):
        _, rig = write_protocols(tmp_path, resources)
        system = build(load_protocol(rig)).system
        try:
            before = {name: len(instrument.log) for name, instrument in bench.instruments().items()}
            step = {"g1": np.full((8, 4), 1e-3), "b2": np.array([0.0, 6.0, 0.0])}
            with pytest.raises(LimitViolation, match="bias current b2 6.0 A exceeds the limit ±5.0 A"):
                system.program(step)
            after = {name: len(instrument.log) for name, instrument in bench.instruments().items()}
        finally:
            system.close()
    assert after == before


@pytest.mark.slow
def test_fault_stops_the_run_with_a_checkpoint_and_resume_finishes_it(tmp_path: Path, capsys) -> None:
    """A garbled voltmeter reading in epoch 2 stops the run: exit 1, one line naming the meter, epoch-1 checkpoint.
    ``--resume`` reprograms the checkpoint's conductances and biases and ends where an undisturbed run ends (to
    the relaxation tolerance: the network's analog state is not part of a checkpoint)."""
    sim, _ = write_protocols(tmp_path, train=4, test=4, epochs=2)
    undisturbed = train(sim, tmp_path / "direct")
    out = tmp_path / "run"
    # Meter lines: *CLS and *IDN? at open, 7 to configure, 1 output on, 1 *OPC?; then 3 outputs + 2 x (32 + 12
    # drops + 7 nodes) per training sample and 3 per test sample, each phase followed by an error-queue read.
    epoch = 4 * (3 + 1 + 2 * (51 + 1)) + 4 * (3 + 1)
    with served(sim, faults=f"garble@{11 + epoch + 100}", fault_on="meter") as (bench, resources):
        _, rig = write_protocols(tmp_path, resources, train=4, test=4, epochs=2)
        assert main(["run", str(rig), "--out", str(out), "--no-progress"]) == 1
        resumed = main(["run", str(rig), "--resume", str(out), "--no-progress"])
        instruments = bench.instruments()
        switched_off = lambda: all(  # noqa: E731 - the servers act on the last write-only lines asynchronously
            i.closed == set() if name == "matrix" else i.output is False for name, i in instruments.items())
        assert eventually(switched_off)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aeqprop: error: InstrumentFault: meter: garbled reply to ':READ?'")
    assert f"last checkpoint after epoch 1; continue with --resume {out}" in err[0]
    assert resumed == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert summary["test_accuracy"] == undisturbed["summary"]["test_accuracy"]
    with np.load(out / "checkpoint.npz") as data:
        for name, value in undisturbed["params"].items():
            np.testing.assert_allclose(data[name], value, rtol=1e-7, atol=1e-10, err_msg=name)


@pytest.mark.slow
def test_serve_bench_command_lists_every_instrument(aeqprop_cmd: list[str]) -> None:
    """`aeqprop serve --bench` puts 25 instruments on 127.0.0.1, each answering on its own port; Ctrl-C stops it."""
    import signal
    import subprocess

    from aeqprop.drivers.keithley2450 import Keithley2450
    from aeqprop.drivers.transport import VisaTransport

    shipped = Path(__file__).resolve().parents[2] / "protocols" / "iris-bench.toml"
    proc = subprocess.Popen([*aeqprop_cmd, "serve", str(shipped), "--bench", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        while not lines or not lines[-1].startswith("serving"):
            line = proc.stdout.readline()
            assert line, proc.stderr.read()
            lines.append(line.strip())
        resources = dict(line.split() for line in lines[:-1])
        assert len(resources) == 25 and len(set(resources.values())) == 25
        assert all(r.startswith("TCPIP0::127.0.0.1::") for r in resources.values())
        meter = Keithley2450(VisaTransport(resources["meter"], timeout_s=2), "meter")
        try:
            assert meter.query("*IDN?").startswith("KEITHLEY INSTRUMENTS,MODEL 2450")
        finally:
            meter.transport.close()
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0


def test_limit_violation_mid_run_exits_2_with_the_run_failed(tmp_path: Path, capsys) -> None:
    """A learning rate so large that a bias step would exceed max_current_a: LimitViolation mid-run is bad input
    (exit 2, as documented), nothing beyond the limit is sent, the summary says failed and the SMUs end off."""
    sim, _ = write_protocols(tmp_path, train=4, test=4)
    with served(sim) as (bench, resources):
        _, rig = write_protocols(tmp_path, resources, train=4, test=4)
        rig.write_text(rig.read_text().replace("lr = 0.1", "lr = 1e6"))
        code = main(["run", str(rig), "--out", str(tmp_path / "run"), "--no-progress"])
        instruments = bench.instruments()
        assert eventually(lambda: all(i.closed == set() if name == "matrix" else i.output is False
                                      for name, i in instruments.items()))
        assert not any(line.startswith(":SOUR:CURR ") and abs(float(line.split()[1])) > 5.0
                       for i in instruments.values() for line in i.log)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "LimitViolation" in err and "exceeds the limit" in err
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "failed"
