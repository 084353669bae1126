"""``aeqprop serve PROTOCOL``: serve a simulated system as a virtual crossbar front-end board.

Over TCP (``--transport tcp``, bound to 127.0.0.1 unless ``--host`` says otherwise) it speaks the crossbar
SCPI dialect to any VISA client (``TCPIP0::127.0.0.1::PORT::SOCKET``); over ``--transport pty`` it is a serial
board on a pseudo-terminal whose path is printed. ``--bench`` serves instead a bench of virtual Keithley 2450
SMUs and a 707B wired to the network, one TCP port each from ``--port`` on (README, "SMU rig"). ``--fault``
injects faults (see README); on a bench they go to the instrument named by ``--fault-on``.
"""

from __future__ import annotations

import argparse
import signal
import sys

from aeqprop.protocol import load_protocol, virtual_bench, virtual_instrument

HELP = "serve a simulated system as a virtual instrument (TCP socket or serial pty)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file whose [system] (a simulator) and run.seed are served")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a field, e.g. --set run.seed=3 (repeatable)")
    parser.add_argument("--transport", choices=("tcp", "pty"), default="tcp", help="tcp socket (default) or serial pty")
    parser.add_argument("--host", default="127.0.0.1",
                        help="interface to listen on (default 127.0.0.1; anything else is reachable by others)")
    parser.add_argument("--port", type=int, default=5025, help="TCP port (default 5025; 0 picks a free one)")
    parser.add_argument("--fault", metavar="SPEC",
                        help="inject faults, e.g. 'delay@10:0.5,garble@200,error@300,drop@400,disconnect@500'")
    parser.add_argument("--log", metavar="FILE", help="append every received command line to FILE")
    parser.add_argument("--bench", action="store_true",
                        help="serve virtual SMUs + a 707B wired to the network (ports --port, --port+1, ...)")
    parser.add_argument("--fault-on", default="matrix", metavar="NAME",
                        help="bench instrument that gets the --fault plan (source0.., nudge0.., meter, pulser, matrix)")


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    if args.bench:
        return _serve_bench(protocol, args)
    server = virtual_instrument(protocol, args.transport, args.host, args.port, args.fault)
    if args.log:
        server.instrument.log_file = open(args.log, "a", buffering=1)
    print(f"serving {protocol.system.kind} system at {server.resource} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0


def _serve_bench(protocol, args: argparse.Namespace) -> int:
    bench, servers = virtual_bench(protocol, args.host, args.port, args.fault, args.fault_on)
    try:
        for (name, instrument), server in zip(bench.instruments().items(), servers, strict=True):
            if args.log:
                instrument.log_file = open(f"{args.log}.{name}", "a", buffering=1)
            server.start()
            print(f"{name:8s} {server.resource}", flush=True)
        print(f"serving a bench of {len(servers)} instruments (Ctrl-C stops)", flush=True)
        while True:
            signal.pause()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    finally:
        for server in servers:
            server.stop()
    return 0
