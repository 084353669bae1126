"""``aeqprop serve PROTOCOL``: serve a simulated system as a virtual crossbar front-end board.

Over TCP (``--transport tcp``, bound to 127.0.0.1 unless ``--host`` says otherwise) it speaks the crossbar
SCPI dialect to any VISA client (``TCPIP0::127.0.0.1::PORT::SOCKET``); over ``--transport pty`` it is a serial
board on a pseudo-terminal whose path is printed. ``--fault`` injects faults (see README).
"""

from __future__ import annotations

import argparse
import sys

from aeqprop.protocol import load_protocol, virtual_instrument

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


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    server = virtual_instrument(protocol, args.transport, args.host, args.port, args.fault)
    if args.log:
        server.instrument.log_file = open(args.log, "a", buffering=1)  # noqa: SIM115 - open while serving
    print(f"serving {protocol.system.kind} system at {server.resource} (Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped", file=sys.stderr)
    return 0
