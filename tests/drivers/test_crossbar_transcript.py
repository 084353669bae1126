"""The crossbar front-end driver and rig at the byte level: configuration, one EP sample, limits, faults."""

from __future__ import annotations

import numpy as np
import pytest

from aeqprop.drivers.crossbar import CrossbarFrontEnd
from aeqprop.drivers.rig import CrossbarRig, RigConfig
from aeqprop.drivers.transcript import Transcript
from aeqprop.system import InstrumentFault, LimitViolation, NotSettled

OK = b'0,"No error"\n'
CATALOG = b"g1 2x1 S 1 weight 0.0 inf,b1 1 A 1 bias -inf inf\n"
CONFIG = dict(kind="rig", inputs=2, outputs=1, resource="TCPIP0::127.0.0.1::1::SOCKET", input_gain_v=2.0,
              pulse_amplitude_v=1.0, pulse_width_s=1e-4, data_format="ascii", prefetch=False, settle_poll_s=1e-4, settle_timeout_s=0.05,
              limits={"max_voltage_v": 2.0, "max_current_a": 1e-3, "max_pulse_v": 1.5})


def w(line: str) -> tuple[bytes, None]:
    return (line.encode() + b"\n", None)


def q(line: str, reply: bytes) -> tuple[bytes, bytes]:
    return (line.encode() + b"\n", reply)


def setup(form: str = "ASC") -> list:
    return [w("*CLS"), q("*IDN?", b"acme,xb-1,7,1.0\n"), q("CONF:SIZE?", b"2,1\n"), q("SYST:CAP?", b"local,program\n"),
         q("PAR:CAT?", CATALOG), q("INP:GAIN?", b"2.0\n"), w("PROG:PULS:AMPL 1.0"), w("PROG:PULS:WIDT 0.0001"),
         w(f"FORM:DATA {form}"), q(":SYST:ERR?", OK), w("OUTP:STAT ON"), q(":SYST:ERR?", OK)]


def rig(extra: list, **config) -> tuple[CrossbarRig, Transcript]:
    cfg = RigConfig.model_validate({**CONFIG, **config})
    link = Transcript(setup("HEX" if cfg.data_format == "hex" else "ASC") + extra)
    return CrossbarRig(CrossbarFrontEnd(link, "crossbar", cfg.limits, cfg.data_format), cfg), link


def test_one_ep_sample_is_four_round_trips_with_prefetch() -> None:
    """With prefetch, each settle carries the phase's measurement: free (outputs), +β and −β (local), program."""
    system, link = rig([
        q("INP:LEV 0.5,0.25;:OUTP:NUDG 0.0;:INIT;:STAT:SETT?;:MEAS:OUT? 1", b"1,3,1e-07;0.3\n"),
        q("OUTP:NUDG 0.5,1.0;:INIT;:STAT:SETT?;:MEAS:LOC? 1", b"1,5,1e-08;0.125,0.5,-0.3\n"),
        q("OUTP:NUDG -0.5,1.0;:INIT;:STAT:SETT?;:MEAS:LOC? 1", b"0,0,0.1;0.0,0.0,0.0\n"),
        q("STAT:SETT?", b"1,2,1e-08\n"),
        q("MEAS:LOC? 1", b"0.1,0.4,-0.2\n"),
        q("PROG:INCR -0.001,0.0,0.5;:SYST:ERR?", OK),
    ], prefetch=True)
    system.clamp(np.array([[0.5, 0.25]]))
    system.nudge(0.0)
    system.relax()
    assert system.read_outputs().tolist() == [[0.3]]
    system.nudge(0.5, np.array([[1.0]]))
    system.relax()
    assert system.read_local()["b1"].tolist() == [-0.3]
    system.nudge(-0.5, np.array([[1.0]]))
    system.relax()  # not settled at first: the prefetched terms are stale and must be read again
    assert system.read_local()["b1"].tolist() == [-0.2]
    system.program({"g1": np.array([[-0.001], [0.0]]), "b1": np.array([0.5])})
    link.assert_done()


def test_one_ep_sample_is_seven_round_trips() -> None:
    """Without prefetch: settle, read outputs, two nudged settles with local reads, program; exact bytes."""
    system, link = rig([
        q("INP:LEV 0.5,0.25;:OUTP:NUDG 0.0;:INIT;:STAT:SETT?", b"1,3,1e-07\n"),
        q("MEAS:OUT? 1", b"0.3\n"),
        q("OUTP:NUDG 0.5,1.0;:INIT;:STAT:SETT?", b"0,0,0.1\n"),
        q("STAT:SETT?", b"1,5,1e-08\n"),
        q("MEAS:LOC? 1", b"0.125,0.5,-0.3\n"),
        q("OUTP:NUDG -0.5,1.0;:INIT;:STAT:SETT?", b"1,2,1e-08\n"),
        q("MEAS:LOC? 1", b"0.1,0.4,-0.2\n"),
        q("PROG:INCR -0.001,0.0,0.5;:SYST:ERR?", OK),
        q("OUTP:STAT OFF;:OUTP:STAT?", b"0\n"),
    ])
    assert system.spec.max_batch == 1
    assert system.spec.params["g1"].shape == (2, 1) and system.spec.params["b1"].role == "bias"
    system.clamp(np.array([[0.5, 0.25]]))
    system.nudge(0.0)
    assert system.relax().sweeps == 3
    assert system.read_outputs().tolist() == [[0.3]]
    system.nudge(0.5, np.array([[1.0]]))
    assert system.relax().sweeps == 5
    local = system.read_local()
    assert local["g1"].tolist() == [[0.125], [0.5]] and local["b1"].tolist() == [-0.3]
    system.nudge(-0.5, np.array([[1.0]]))
    system.relax()
    system.read_local()
    system.program({"g1": np.array([[-0.001], [0.0]]), "b1": np.array([0.5])})
    system.close()
    link.assert_done()


@pytest.mark.parametrize(
    ("act", "message"),
    [
        (lambda s: s.clamp(np.array([[0.5, 1.5]])), "input voltage 3.0 V exceeds the limit ±2.0 V"),
        (lambda s: s.nudge(0.5, np.array([[2.5]])), "nudge target voltage 2.5 V exceeds"),
    ],
)
def test_limit_violation_leaves_nothing_to_send(act, message: str) -> None:
    """A violating clamp or target raises before buffering: the next line carries only the valid commands."""
    system, link = rig([q("OUTP:NUDG 0.0;:INIT;:STAT:SETT?", b"1,1,0.0\n")])
    with pytest.raises(LimitViolation, match=message):
        act(system)
    sent_before = list(link.sent)
    system.nudge(0.0)
    system.relax()
    assert link.sent[len(sent_before):] == [b"OUTP:NUDG 0.0;:INIT;:STAT:SETT?\n"]
    link.assert_done()


def test_protocol_beyond_limits_is_rejected_before_connecting() -> None:
    """Input full scale or pulse settings beyond the limits fail validation: no link is ever opened."""
    with pytest.raises(ValueError, match="input full scale 3.0 V exceeds the limit ±2.0 V"):
        RigConfig.model_validate({**CONFIG, "input_gain_v": 3.0})
    with pytest.raises(ValueError, match="pulse amplitude 1.8 V exceeds the limit ±1.5 V"):
        RigConfig.model_validate({**CONFIG, "pulse_amplitude_v": 1.8})
    with pytest.raises(ValueError, match="pulse width"):
        RigConfig.model_validate({**CONFIG, "pulse_width_s": 0.5})


def test_settle_timeout_and_failure_raise_not_settled() -> None:
    """Relax polls the settle status with a deadline; a board that never settles, or reports failure, stops the run."""
    system, _ = rig([q("INP:LEV 0.0,0.0;:INIT;:STAT:SETT?", b"0,0,1.0\n")] + [q("STAT:SETT?", b"0,0,1.0\n")] * 2000)
    system.clamp(np.zeros((1, 2)))
    with pytest.raises(NotSettled, match="not settled after 0.05 s"):
        system.relax()
    system, _ = rig([q("INIT;:STAT:SETT?", b"-1,1000,0.01\n")])
    with pytest.raises(NotSettled, match="could not settle"):
        system.relax()


def test_error_on_programming_raises_with_every_entry() -> None:
    """An error reported in the programming round trip stops the run and quotes the board's messages."""
    system, link = rig([q("PROG:INCR 0.0,0.0,0.0;:SYST:ERR?", b'-310,"System error; injected"\n'),
                        q(":SYST:ERR?", b'-200,"Execution error"\n'), q(":SYST:ERR?", OK)])
    with pytest.raises(InstrumentFault, match=r"-310 System error; injected; .*-200 Execution error"):
        system.program({})
    link.assert_done()


def test_gain_mismatch_refuses_to_start() -> None:
    """A board whose input gain differs from the protocol's would apply other voltages than validated: refuse."""
    with pytest.raises(InstrumentFault, match="board input gain is 2.0 V but the protocol says input_gain_v = 1.0"):
        rig([], input_gain_v=1.0)


def test_hex_format_is_exact_and_compact() -> None:
    """FORM:DATA HEX: lists go out as 16 hex digits per float64 and come back bit-identical."""
    values = np.array([0.1, -1 / 3, 2.5e-300])
    system, link = rig([q("MEAS:LOC? 1", values.astype(">f8").tobytes().hex().encode() + b"\n"),
                        q("PROG:INCR " + values.astype(">f8").tobytes().hex() + ";:SYST:ERR?", OK)], data_format="hex")
    local = system.read_local()
    assert local["g1"].ravel().tolist() + local["b1"].tolist() == values.tolist()
    system.program({"g1": values[:2].reshape(2, 1), "b1": values[2:]})
    link.assert_done()


def test_hex_reply_of_wrong_length_is_a_fault() -> None:
    """A truncated hex reply is caught by its length, never read as fewer or shifted values."""
    system, _ = rig([q("PAR?", b"3fb999999999999a" * 2 + b"\n")], data_format="hex")
    with pytest.raises(InstrumentFault, match="expected 3 hex values in reply to 'PAR\\?', got 32 characters"):
        system.read_params()


def test_verify_reads_confirm_settling_or_time_out() -> None:
    """With verify_reads, settled also needs consecutive output reads that agree within verify_tol_v."""
    system, link = rig([q("INIT;:STAT:SETT?", b"1,1,0.0\n"), q("MEAS:OUT? 1", b"0.3\n"), q("MEAS:OUT? 1", b"0.31\n"),
                        q("MEAS:OUT? 1", b"0.3100001\n")], verify_reads=1, verify_tol_v=1e-6)
    system.relax()
    link.assert_done()
    drifting = [q("MEAS:OUT? 1", f"{0.1 * k}\n".encode()) for k in range(2000)]
    system, _ = rig([q("INIT;:STAT:SETT?", b"1,1,0.0\n"), *drifting], verify_reads=2)
    with pytest.raises(NotSettled, match="outputs still drifting"):
        system.relax()
