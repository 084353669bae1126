"""Hardware-in-the-loop cost per training sample through the real VISA stack (pyvisa-py over TCP, 127.0.0.1).

Trains a rig protocol against a virtual crossbar board and splits the time per training sample into:

* round trips and bytes per sample (counted at the board);
* **transport**: the same lines and replies exchanged through pyvisa-py with a replay server in another
  process that does no work, read with exactly the transport calls the driver made (line reads up to ``;`` or
  ``\n`` for text parts, exact-length reads for binary blocks): the transport's own cost;
* **controller**: the same training with the link replaced by an in-memory replay of the recorded transcript
  (driver formatting/parsing, rig, EP rule, optimizer and trainer; no I/O, no instrument);
* **instrument**: time the virtual board spent answering (simulation and reply formatting);
* **total**: the live run, board in another process (``aeqprop serve``).

Writes benchmarks/results/hil_overhead.json.

    python benchmarks/hil_overhead.py [--hidden 32] [--samples 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine, write_json
from aeqprop.drivers.crossbar import CrossbarFrontEnd
from aeqprop.drivers.rig import CrossbarRig
from aeqprop.drivers.transcript import Transcript
from aeqprop.simulators.virtual import Reply, TcpServer

from aeqprop.data import load_dataset
from aeqprop.protocol import build, load_protocol, validate_raw, virtual_instrument
from aeqprop.trainer import Trainer, TrainSettings

SIM = """
version = 1
[system]
kind = "resistive"
inputs = 64
hidden = [{hidden}]
outputs = 10
input_gain = 4.0
[algorithm]
kind = "ep"
estimator = "centered"
beta = 0.5
[optimizer]
kind = "sgd"
lr = 0.05
[data]
name = "digits"
train_limit = {samples}
test_limit = 1
[run]
epochs = 1
seed = 0
batch_size = 1
eval_batch_size = 1
"""


def rig_raw(sim_path: Path, resource: str) -> dict:
    import tomllib

    raw = tomllib.loads(sim_path.read_text())
    raw["system"] = {"kind": "rig", "inputs": 64, "outputs": 10, "resource": resource, "input_gain_v": 4.0,
                     "pulse_amplitude_v": 1.0, "pulse_width_s": 1e-4,
                     "limits": {"max_voltage_v": 5.0, "max_current_a": 1e-3}}
    return raw


def train_epoch(system, protocol) -> float:
    """Seconds of one training epoch of ``protocol`` on ``system`` (the trainer's own train_s, no evaluation)."""
    parts = build(protocol, system)
    data = load_dataset("digits").limit(protocol.data.train_limit, protocol.data.test_limit)
    settings = TrainSettings(epochs=1, batch_size=1, eval_batch_size=1, progress=False, log=None)
    return Trainer(system, parts.rule, data, settings, parts.shuffle_rng).train_epoch()["train_s"]


def record(sim_path: Path) -> tuple[list[tuple[str, str | None]], int, list[float]]:
    """Run once against an in-process board; return (line, reply) pairs, setup lines and per-line board seconds."""
    server = virtual_instrument(load_protocol(sim_path), "tcp", "127.0.0.1", 0)
    board = server.instrument
    pairs: list[tuple[str, str | None]] = []
    seconds: list[float] = []
    process = board.process

    def recording(line: str) -> Reply:
        start = time.perf_counter()
        reply = process(line)
        seconds.append(time.perf_counter() - start)
        pairs.append((line, reply.text))
        return reply

    board.process = recording
    server.start()
    try:
        protocol = validate_raw(rig_raw(sim_path, server.resource), "rig")
        system = build(protocol).system
        setup = len(pairs)
        train_epoch(system, protocol)
        system.close()
    finally:
        server.stop()
    return pairs, setup, seconds


def replay_server(path: str) -> int:
    """Serve recorded replies in order, doing no work (run in its own process by the benchmark)."""
    replies = json.loads(Path(path).read_text())
    state = {"i": 0}

    class Replay:
        def process(self, line: str) -> Reply:
            reply = replies[state["i"] % len(replies)]
            state["i"] += 1
            return Reply(reply)

    server = TcpServer(Replay(), "127.0.0.1", 0)
    print(server.port, flush=True)
    server.serve_forever()
    return 0


def _bytes(text: str) -> bytes:
    """A line as it travels: latin-1 keeps the bytes of binary blocks."""
    return text.encode("latin-1")


class Recording:
    """A transport wrapper that notes every call (write, line read up to a byte, exact read) in ``calls``."""

    def __init__(self, inner, calls: list) -> None:
        self.inner, self.calls = inner, calls

    def write(self, data: bytes) -> None:
        self.calls.append(("write", data))
        self.inner.write(data)

    def read_line(self, termination: bytes) -> bytes:
        self.calls.append(("line", termination))
        return self.inner.read_line(termination)

    def read_exact(self, count: int) -> bytes:
        self.calls.append(("exact", count))
        return self.inner.read_exact(count)

    def discard(self) -> None:
        self.inner.discard()

    def close(self) -> None:
        self.inner.close()


def _training_calls(calls: list, lines: int) -> int:
    """How many recorded calls belong to the first ``lines`` written lines (the training epoch)."""
    writes = 0
    for k, (kind, _) in enumerate(calls):
        if kind == "write":
            if writes == lines:
                return k
            writes += 1
    return len(calls)


def spawn(cmd: list[str], pattern: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    match = re.search(pattern, line)
    if not match:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, match.group(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--samples", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3, help="best of this many timings of each part")
    parser.add_argument("--replay-server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replay_server:
        return replay_server(args.replay_server)

    import pyvisa

    tmp = Path(tempfile.mkdtemp())
    sim_path = tmp / "sim.toml"
    sim_path.write_text(SIM.format(hidden=args.hidden, samples=args.samples))
    pairs, setup, board_s = record(sim_path)
    n = args.samples
    eval_lines, close_lines = 1, 1  # one test sample (settle carrying its output read), then outputs off
    train_pairs = pairs[setup : len(pairs) - eval_lines - close_lines]
    per_sample = len(train_pairs) / n
    sent_bytes = sum(len(_bytes(line)) + 1 for line, _ in train_pairs) / n
    received_bytes = sum(len(_bytes(r)) + 1 for _, r in train_pairs if r is not None) / n
    instrument_s = sum(board_s[setup:]) / n

    # Controller: the same training over an in-memory replay of the transcript.
    controller = []
    calls: list[tuple[str, bytes | int]] = []
    for repeat in range(args.repeats):
        link = Transcript([(_bytes(line) + b"\n", None if r is None else _bytes(r) + b"\n") for line, r in pairs])
        if repeat == 0:  # the transport calls the driver makes, replayed over pyvisa-py below
            link = Recording(link, calls)
        protocol = validate_raw(rig_raw(sim_path, "TCPIP0::127.0.0.1::1::SOCKET"), "rig")
        cfg = protocol.system
        board = CrossbarFrontEnd(link, "crossbar", cfg.limits, cfg.data_format, cfg.readback_every,
                                 cfg.program_precision, cfg.program_rides_along)
        system = CrossbarRig(board, cfg)
        if repeat == 0:
            calls.clear()  # keep the training epoch's calls only
        controller.append(train_epoch(system, protocol) / n)

    # Transport: pyvisa-py to a replay server (own process) answering the same lines with the same replies.
    replies_path = tmp / "replies.json"
    replies_path.write_text(json.dumps([r for _, r in train_pairs if r is not None]))  # latin-1 text
    proc, port = spawn([sys.executable, __file__, "--replay-server", str(replies_path)], r"(\d+)")
    transport = []
    try:
        rm = pyvisa.ResourceManager("@py")
        from aeqprop.drivers.transport import VisaTransport

        link = VisaTransport(f"TCPIP0::127.0.0.1::{port}::SOCKET", timeout_s=10)
        wire = calls[: _training_calls(calls, len(train_pairs))]
        for _ in range(args.repeats):
            start = time.perf_counter()
            for kind, arg in wire:
                if kind == "write":
                    link.write(arg)  # type: ignore[arg-type]
                elif kind == "line":
                    link.read_line(arg)  # type: ignore[arg-type]
                else:
                    link.read_exact(arg)  # type: ignore[arg-type]
            transport.append((time.perf_counter() - start) / n)
        link.close()
        rm.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)

    # Total: live training against `aeqprop serve` in its own process.
    exe = Path(sys.executable).parent / "aeqprop"
    total = []
    for _ in range(args.repeats):
        proc, resource = spawn([str(exe), "serve", str(sim_path), "--port", "0"], r"at (\S+) ")
        try:
            protocol = validate_raw(rig_raw(sim_path, resource), "rig")
            system = build(protocol).system
            total.append(train_epoch(system, protocol) / n)
            system.close()
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    best = {"controller_s": min(controller), "transport_s": min(transport), "total_s": min(total)}
    payload = {
        "what": "seconds per training sample (centered EP, batch 1) through pyvisa-py over TCP on 127.0.0.1",
        "network": f"64-{args.hidden}-10 resistive, digits, {n} samples",
        "round_trips_per_sample": per_sample,
        "bytes_sent_per_sample": sent_bytes,
        "bytes_received_per_sample": received_bytes,
        "transport_s_per_sample": best["transport_s"],
        "transport_s_per_round_trip": best["transport_s"] / per_sample,
        "controller_s_per_sample": best["controller_s"],
        "instrument_s_per_sample": instrument_s,
        "total_s_per_sample": best["total_s"],
        "controller_overhead_vs_transport": best["controller_s"] / best["transport_s"],
        "data_format": "binary (IEEE-488.2 blocks of float64), parameters read back after every step",
        "all_timings": {"controller_s": controller, "transport_s": transport, "total_s": total},
        "note": "timings on a shared machine are noisy; best of --repeats runs",
        "machine": machine(),
    }
    path = write_json("hil_overhead.json", payload)
    print(json.dumps({k: v for k, v in payload.items() if k not in ("all_timings", "machine")}, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
