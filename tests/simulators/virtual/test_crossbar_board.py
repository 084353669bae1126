"""The virtual crossbar board: dialect, error queue, command log, fault injection, TCP and pty servers, CLI."""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest
from aeqprop.simulators.virtual import CrossbarBoard, FaultPlan, PtyServer, TcpServer
from aeqprop.simulators.virtual.servers import GARBLED

from tests.conftest import ROOT, small_network


@pytest.fixture
def board() -> CrossbarBoard:
    return CrossbarBoard(small_network(inputs=2, hidden=(2,), outputs=1), input_gain_v=2.0)


def test_catalog_sizes_and_identity(board: CrossbarBoard) -> None:
    """Compound queries answer in order, joined by ';'; the catalog lists every parameter group with its shape."""
    reply = board.process("*IDN?;:CONF:SIZE?;:INP:GAIN?;:SYST:CAP?").text
    assert reply == "aeqprop,virtual-crossbar,0,0.1;2,1;2.0;local,program"
    catalog = board.process("PAR:CAT?").text.split(",")
    assert catalog[0] == "g1 4x2 S 1 weight 0.0 inf" and catalog[-1] == "b2 1 A 2 bias -inf inf"


def test_errors_are_queued_not_answered(board: CrossbarBoard) -> None:
    """Unknown headers, wrong counts and settling with outputs off go to the error queue (SCPI codes), in order."""
    assert board.process("FOO:BAR 1;:INP:LEV 1.0;:INIT").text is None
    codes = [board.process("SYST:ERR?").text for _ in range(4)]
    assert codes[0].startswith("-113,") and codes[1].startswith("-109,") and codes[2].startswith("-221,")
    assert codes[3] == '0,"No error"'


def test_settle_measure_and_program_in_both_formats(board: CrossbarBoard) -> None:
    """ASC and HEX lists carry the same values; programming changes the parameters by exactly the increments."""
    board.process("OUTP:STAT ON;:INP:LEV 0.5,0.25;:OUTP:NUDG 0.0;:INIT")
    state, sweeps, _ = board.process("STAT:SETT?").text.split(",")
    assert state == "1" and int(sweeps) > 0
    asc = np.array(board.process("MEAS:LOC?").text.split(","), dtype=float)
    board.process("FORM:DATA HEX")
    hexed = np.frombuffer(bytes.fromhex(board.process("MEAS:LOC?").text), dtype=">f8")
    assert np.array_equal(asc, hexed)
    before = np.frombuffer(bytes.fromhex(board.process("PAR?").text), dtype=">f8")
    step = np.full(before.size, 1e-3)
    board.process("PROG:INCR " + step.astype(">f8").tobytes().hex())
    after = np.frombuffer(bytes.fromhex(board.process("PAR?").text), dtype=">f8")
    assert np.array_equal(after, before + step)
    assert board.process("SYST:ERR?").text == '0,"No error"'


def test_every_line_is_logged(board: CrossbarBoard) -> None:
    """The log holds each received line verbatim, including ones that fail."""
    board.process("*IDN?")
    board.process("NOPE")
    assert board.log == ["*IDN?", "NOPE"]


@pytest.mark.parametrize("spec", ["boom@3", "drop@0", "delay@x", "garble", "delay@2:soon"])
def test_bad_fault_specs_are_rejected(spec: str) -> None:
    with pytest.raises(ValueError, match="fault"):
        FaultPlan.parse(spec)


def _ask(sock: socket.socket, line: bytes) -> bytes:
    sock.sendall(line)
    data = b""
    while not data.endswith(b"\n"):
        chunk = sock.recv(4096)
        if not chunk:
            return data
        data += chunk
    return data


def test_faults_over_tcp(board: CrossbarBoard) -> None:
    """delay, garble, drop, error and disconnect each fire once at their line, over a real socket on 127.0.0.1."""
    board.faults = FaultPlan.parse("delay@1:0.05,garble@2,drop@3,error@4,disconnect@6")
    with TcpServer(board) as server:
        assert server.host == "127.0.0.1"
        with socket.create_connection((server.host, server.port), timeout=2) as sock:
            assert _ask(sock, b"*OPC?\n") == b"1\n"
            assert _ask(sock, b"*OPC?\n") == GARBLED + b"\n"
            sock.sendall(b"*IDN?\n")  # dropped: its reply never comes ...
            assert _ask(sock, b"*OPC?\n") == b"1\n"  # ... so, replies arriving in order, the next one is *OPC?'s
            assert _ask(sock, b"SYST:ERR?\n").startswith(b"-310,")
            assert _ask(sock, b"*OPC?\n") == b""
        with socket.create_connection((server.host, server.port), timeout=2) as sock:
            assert _ask(sock, b"*OPC?\n") == b"1\n"
    assert len(board.log) == 7


def test_pty_board_with_pyserial(board: CrossbarBoard) -> None:
    """A serial board on a pty answers pyserial line by line."""
    import serial

    with PtyServer(board) as server, serial.Serial(server.port, timeout=2) as port:
        port.write(b"*IDN?\n")
        assert port.readline() == b"aeqprop,virtual-crossbar,0,0.1\n"


def test_serve_command_over_pyvisa(aeqprop_cmd: list[str]) -> None:
    """`aeqprop serve` listens on 127.0.0.1 and answers pyvisa-py; it stops when terminated."""
    import pyvisa

    proc = subprocess.Popen([*aeqprop_cmd, "serve", str(ROOT / "protocols" / "virtual-crossbar.toml"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        resource = re.search(r"at (TCPIP0::127\.0\.0\.1::\d+::SOCKET) ", line).group(1)
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=5000)
        assert inst.query("*IDN?") == "aeqprop,virtual-crossbar,0,0.1"
        assert inst.query("CONF:SIZE?") == "64,10"
        inst.close()
        rm.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_serve_refuses_a_rig(tmp_path: Path, capsys) -> None:
    """Serving needs a simulator: a rig protocol is a one-line error."""
    from aeqprop.cli import main

    assert main(["serve", str(ROOT / "protocols" / "rig-crossbar.toml"), "--port", "0"]) == 2
    assert "serve a simulated system" in capsys.readouterr().err


def test_binary_blocks_may_hold_any_byte(board: CrossbarBoard) -> None:
    """Blocks whose payload holds line ends, ';', '#' and a trailing space are framed and parsed by their header:
    levels set through one come back bit-identical (INP:LEV?), and a header that lies is an error, not data."""
    from aeqprop.simulators.virtual.scpi import block, next_message, split_units

    payload = b"\x3f\x0a\x3b\x23\x20\x0a\x3b\x20" + b"\xbf\xd0\x0a\x0a\x3b\x23\x0d\x20"
    levels = np.frombuffer(payload, dtype=">f8").astype(np.float64)
    assert np.all(np.abs(levels) < 1)
    message = ("FORM:DATA REAL,64;:INP:LEV " + block(levels) + ";:INP:LEV?").encode("latin-1")
    framed, rest = next_message(message + b"\n" + b"*IDN?\n")
    assert framed == message and rest == b"*IDN?\n"
    assert next_message(message[:-15] + b"\n")[0] is None  # the block is incomplete: wait for more bytes
    assert len(split_units(message.decode("latin-1"))) == 3
    assert board.process(message.decode("latin-1")).text == block(levels)
    assert board.process("SYST:ERR?").text == '0,"No error"'
    board.process("INP:LEV #217" + "\x00" * 17)  # 17 bytes are not 2 float64
    assert board.process("SYST:ERR?").text.startswith("-160,")
    assert board.process("INP:LEV?").text == block(levels)  # unchanged
