"""The crossbar front-end driver and rig at the byte level: configuration, one EP sample, limits, faults."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.drivers.crossbar import CrossbarFrontEnd, binary_block
from aeqprop.drivers.rig import CrossbarRig, RigConfig
from aeqprop.drivers.transcript import Transcript

from aeqprop.system import InstrumentFault, LimitViolation, NotSettled

OK = b'0,"No error"'
CATALOG = b"g1 2x1 S 1 weight 0.0 inf,b1 1 A 1 bias -inf inf\n"
START = "0.5,0.25,0.0"  # the parameters the board reports at configuration
CONFIG = dict(kind="rig", inputs=2, outputs=1, resource="TCPIP0::127.0.0.1::1::SOCKET", input_gain_v=2.0,
              pulse_amplitude_v=1.0, pulse_width_s=1e-4, data_format="ascii", prefetch=False, settle_poll_s=1e-4,
              program_rides_along=False,
              settle_timeout_s=60.0,  # a bound against hangs; the timeout tests set their own short one
              limits={"max_voltage_v": 2.0, "max_current_a": 1e-3, "max_pulse_v": 1.5})


def w(line: str) -> tuple[bytes, None]:
    return (line.encode() + b"\n", None)


def q(line: str, reply: bytes | str) -> tuple[bytes, bytes]:
    """A query line of the driver (``;:SYST:ERR?`` is appended where the driver appends it) and its reply."""
    if isinstance(reply, str):
        reply = reply.encode()
    return (line.encode() + b"\n", reply if reply.endswith(b"\n") else reply + b"\n")


def e(line: str, reply: bytes | str = b"", error: bytes = OK) -> tuple[bytes, bytes]:
    """A round trip of the crossbar driver: ``line;:SYST:ERR?`` answered by ``reply;<error entry>``."""
    if isinstance(reply, str):
        reply = reply.encode()
    return q(line + ";:SYST:ERR?", (reply + b";" if reply else b"") + error)


def setup(form: str = "ASC", start: bytes = START.encode()) -> list:
    return [w("*CLS"), q("*IDN?", b"acme,xb-1,7,1.0\n"), q("CONF:SIZE?", b"2,1\n"), q("SYST:CAP?", b"local,program\n"),
            q("PAR:CAT?", CATALOG), q("INP:GAIN?", b"2.0\n"), w("PROG:PULS:AMPL 1.0"), w("PROG:PULS:WIDT 0.0001"),
            w(f"FORM:DATA {form}"), q(":SYST:ERR?", OK), e("PAR?", start), e("OUTP:STAT ON;:OUTP:STAT?", "1")]


CLEAR = [q("*IDN?", b"late reply\nacme,xb-1,7,1.0\n"), q("*OPC?", b"1\n")]  # a late line, then the fresh reply
FORMS = {"ascii": "ASC", "hex": "HEX", "binary": "REAL,64"}


def rig(extra: list, **config) -> tuple[CrossbarRig, Transcript]:
    cfg = RigConfig.model_validate({**CONFIG, **config})
    start = START.encode() if cfg.data_format == "ascii" else _encode(np.array([0.5, 0.25, 0.0]), cfg.data_format)
    link = Transcript(setup(FORMS[cfg.data_format], start) + extra)
    board = CrossbarFrontEnd(link, "crossbar", cfg.limits, cfg.data_format, cfg.readback_every, cfg.program_precision,
                             cfg.program_rides_along)
    return CrossbarRig(board, cfg), link


def _encode(values: np.ndarray, form: str) -> bytes:
    return binary_block(values) if form == "binary" else values.astype(">f8").tobytes().hex().encode()


LEV = "INP:LEV 0.5,0.25;:INP:LEV?"
FREE = "OUTP:NUDG 0.0;:OUTP:NUDG?"


def test_one_ep_sample_is_four_round_trips_with_prefetch() -> None:
    """With prefetch, each settle carries the phase's measurement and the read-back of what it set: free
    (outputs), +β and −β (local terms), program (with the parameter read-back); errors in every trip."""
    system, link = rig([
        e(f"{LEV};:{FREE};:INIT;:STAT:SETT?;:MEAS:OUT? 1", "0.5,0.25;0.0,0.0;1,3,1e-07;0.3"),
        e("OUTP:NUDG 0.5,1.0;:OUTP:NUDG?;:INIT;:STAT:SETT?;:MEAS:LOC? 1", "0.5,1.0;1,5,1e-08;0.125,0.5,-0.3"),
        e("OUTP:NUDG -0.5,1.0;:OUTP:NUDG?;:INIT;:STAT:SETT?;:MEAS:LOC? 1", "-0.5,1.0;0,0,0.1;0.0,0.0,0.0"),
        e("STAT:SETT?", "1,2,1e-08"),
        e("MEAS:LOC? 1", "0.1,0.4,-0.2"),
        e("PROG:INCR -0.001,0.0,0.5;:PAR?", "0.499,0.25,0.5"),
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


def test_programming_rides_along_with_the_next_phase() -> None:
    """With program_rides_along, the step goes out in front of the next sample's first phase, its read-back and
    errors checked in that round trip: 3 round trips per centered-EP sample. Close sends a step still waiting."""
    step = {"g1": np.array([[-0.001], [0.0]]), "b1": np.array([0.5])}
    system, link = rig([
        e(f"PROG:INCR -0.001,0.0,0.5;:PAR?;:{LEV};:{FREE};:INIT;:STAT:SETT?;:MEAS:OUT? 1",
          "0.499,0.25,0.5;0.5,0.25;0.0,0.0;1,3,1e-07;0.3"),
        e("PROG:INCR -0.001,0.0,0.5;:PAR?", "0.498,0.25,1.0"),
        e("OUTP:STAT OFF;:OUTP:STAT?", "0"),
    ], prefetch=True, program_rides_along=True)
    system.program(step)
    system.clamp(np.array([[0.5, 0.25]]))
    system.nudge(0.0)
    system.relax()
    assert system.read_outputs().tolist() == [[0.3]]
    system.program(step)
    system.close()
    link.assert_done()


def test_a_step_that_was_not_applied_is_caught_in_the_next_round_trip() -> None:
    """A board that ignored the riding step reads back the old parameters: a fault before anything else is
    programmed, and close then sends nothing more to program."""
    step = {"g1": np.array([[-0.001], [0.0]]), "b1": np.array([0.5])}
    system, link = rig([
        e(f"PROG:INCR -0.001,0.0,0.5;:PAR?;:{LEV};:INIT;:STAT:SETT?", f"{START};0.5,0.25;1,3,1e-07"),
        (b"OUTP:STAT OFF\n", None), *CLEAR, e("OUTP:STAT OFF;:OUTP:STAT?", "0"),
    ], program_rides_along=True)
    system.program(step)
    system.clamp(np.array([[0.5, 0.25]]))
    with pytest.raises(InstrumentFault, match=r"g1\[0, 0\] reads back 0.5 but 0.499 was programmed \(2 of 3"):
        system.relax()
    system.close()
    link.assert_done()


def test_one_ep_sample_is_seven_round_trips() -> None:
    """Without prefetch: settle, read outputs, two nudged settles with local reads, program; exact bytes."""
    system, link = rig([
        e(f"{LEV};:{FREE};:INIT;:STAT:SETT?", "0.5,0.25;0.0,0.0;1,3,1e-07"),
        e("MEAS:OUT? 1", "0.3"),
        e("OUTP:NUDG 0.5,1.0;:OUTP:NUDG?;:INIT;:STAT:SETT?", "0.5,1.0;0,0,0.1"),
        e("STAT:SETT?", "1,5,1e-08"),
        e("MEAS:LOC? 1", "0.125,0.5,-0.3"),
        e("OUTP:NUDG -0.5,1.0;:OUTP:NUDG?;:INIT;:STAT:SETT?", "-0.5,1.0;1,2,1e-08"),
        e("MEAS:LOC? 1", "0.1,0.4,-0.2"),
        e("PROG:INCR -0.001,0.0,0.5;:PAR?", "0.499,0.25,0.5"),
        e("OUTP:STAT OFF;:OUTP:STAT?", "0"),
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
    system.close()  # a second close sends nothing
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
    system, link = rig([e(f"{FREE};:INIT;:STAT:SETT?", "0.0,0.0;1,1,0.0")])
    with pytest.raises(LimitViolation, match=message):
        act(system)
    sent_before = list(link.sent)
    system.nudge(0.0)
    system.relax()
    assert link.sent[len(sent_before):] == [f"{FREE};:INIT;:STAT:SETT?;:SYST:ERR?\n".encode()]
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
    system, _ = rig([e("INP:LEV 0.0,0.0;:INP:LEV?;:INIT;:STAT:SETT?", "0.0,0.0;0,0,1.0")]
                    + [e("STAT:SETT?", "0,0,1.0")] * 2000,
                    settle_timeout_s=0.05)
    system.clamp(np.zeros((1, 2)))
    with pytest.raises(NotSettled, match="not settled after 0.05 s"):
        system.relax()
    system, _ = rig([e("INIT;:STAT:SETT?", "-1,1000,0.01")])
    with pytest.raises(NotSettled, match="could not settle"):
        system.relax()


def test_error_on_programming_raises_with_every_entry() -> None:
    """An error reported in the programming round trip stops the run and quotes the board's messages."""
    system, link = rig([e("PROG:INCR 0.0,0.0,0.0;:PAR?", START, b'-310,"System error; injected"'),
                        q(":SYST:ERR?", b'-200,"Execution error"\n'), q(":SYST:ERR?", OK)])
    with pytest.raises(InstrumentFault, match=r"-310 System error; injected; .*-200 Execution error"):
        system.program({})
    link.assert_done()


def test_gain_mismatch_refuses_to_start() -> None:
    """A board whose input gain differs from the protocol's would apply other voltages than validated: refuse."""
    with pytest.raises(InstrumentFault, match="board input gain is 2.0 V but the protocol says input_gain_v = 1.0"):
        rig([], input_gain_v=1.0)


def test_binary_blocks_are_exact_and_strict() -> None:
    """FORM:DATA REAL,64: lists go out and come back as definite-length blocks of big-endian float64, bit-exact;
    the block header, the payload length and the separator after it are all checked."""
    values = np.array([0.1, 1 / 3, -2.5e-300])
    block = binary_block(values)
    assert block[:4] == b"#224" and np.frombuffer(block[4:], ">f8").tolist() == values.tolist()
    system, link = rig([
        (b"MEAS:LOC? 1;:SYST:ERR?\n", block + b";" + OK + b"\n"),
        (b"PROG:INCR " + block + b";:PAR?;:SYST:ERR?\n", binary_block(np.array([0.5, 0.25, 0.0]) + values)
         + b";" + OK + b"\n"),
    ], data_format="binary")
    local = system.read_local()
    assert local["g1"].ravel().tolist() + local["b1"].tolist() == values.tolist()
    system.program({"g1": values[:2].reshape(2, 1), "b1": values[2:]})
    link.assert_done()


NOT_A_BLOCK = "part 1 of the reply to 'PAR\\?;:SYST:ERR\\?' is not a block of 3 float64 followed by ';'"


@pytest.mark.parametrize(("reply", "message"), [
    (b"#216" + bytes(16) + b";" + OK + b"\n", NOT_A_BLOCK),  # a header that says 2 values
    (b"3fb999999999999a3fb999999999999a3fb999999999999a;" + OK + b"\n", NOT_A_BLOCK),  # no block at all
    (b"#224" + bytes(24) + OK + b"\n", NOT_A_BLOCK),  # no ';' after the block
    (b"#224" + bytes(24) + b";" + b"#" + bytes(5000) + b"\n", "not an error entry"),
])
def test_bad_binary_reply_is_a_fault(reply: bytes, message: str) -> None:
    """A block of the wrong length, no block, no separator or a giant tail: a fault, never shifted or fewer values.
    The link is then cleared (read up to a fresh ``*IDN?`` reply, then ``*OPC?``) and the error queue drained."""
    system, link = rig([(b"PAR?;:SYST:ERR?\n", reply), *CLEAR, q(":SYST:ERR?", OK)], data_format="binary")
    with pytest.raises(InstrumentFault, match=message) as caught:
        system.read_params()
    link.assert_done()
    assert len(str(caught.value)) < 400  # the reply is quoted within bounds


def test_nan_read_back_is_a_fault_and_the_next_query_clears_the_link() -> None:
    """NaN where a parameter was programmed fails the comparison; the query after the fault clears the link."""
    nan = b"#224" + np.array([0.5, np.nan, 0.0], ">f8").tobytes() + b";" + OK + b"\n"
    system, link = rig([(b"PAR?;:SYST:ERR?\n", nan), (b"OUTP:STAT OFF\n", None), *CLEAR,
                        (b"OUTP:STAT OFF;:OUTP:STAT?;:SYST:ERR?\n", b"0;" + OK + b"\n")], data_format="binary")
    with pytest.raises(InstrumentFault, match=r"g1\[1, 0\] reads back nan but 0.25"):
        system.read_params()
    system.close()  # the switch-off goes out first, then the cleared link confirms it
    link.assert_done()


def test_hex_reply_of_wrong_length_is_a_fault() -> None:
    """A truncated hex reply is caught by its length, never read as fewer or shifted values."""
    system, _ = rig([e("PAR?", b"3fb999999999999a" * 2), *CLEAR, q(":SYST:ERR?", OK)], data_format="hex")
    message = "expected 3 hex values in reply to 'PAR\\?;:SYST:ERR\\?', got 32 characters"
    with pytest.raises(InstrumentFault, match=message):
        system.read_params()


def test_verify_reads_confirm_settling_or_time_out() -> None:
    """With verify_reads, settled also needs consecutive output reads that agree within verify_tol_v."""
    system, link = rig([e("INIT;:STAT:SETT?", "1,1,0.0"), e("MEAS:OUT? 1", "0.3"), e("MEAS:OUT? 1", "0.31"),
                        e("MEAS:OUT? 1", "0.3100001")], verify_reads=1, verify_tol_v=1e-6)
    system.relax()
    link.assert_done()
    drifting = [e("MEAS:OUT? 1", f"{0.1 * (k % 19)}") for k in range(2000)]
    system, _ = rig([e("INIT;:STAT:SETT?", "1,1,0.0"), *drifting], verify_reads=2, settle_timeout_s=0.05)
    with pytest.raises(NotSettled, match="outputs still drifting"):
        system.relax()
