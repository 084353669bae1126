"""Line servers that put a virtual instrument on a real transport: a TCP port or a pseudo-terminal.

Both read ``\\n``-terminated lines, hand each to ``instrument.process(line)`` and write the reply (plus
``\\n``), applying the injected fault the instrument returns. TCP binds 127.0.0.1 unless told otherwise and
serves one client at a time (a new client may connect after the previous one left, as after a fault).
"""

from __future__ import annotations

import os
import select
import socket
import threading
import time
import tty
from typing import Protocol

from .crossbar import Reply
from .scpi import next_message

__all__ = ["GARBLED", "GIANT", "LineInstrument", "PtyServer", "TcpServer"]

#: What a garbled reply looks like on the wire: not ASCII, not a number.
GARBLED = b"\xfe#?garbled\xff"


class LineInstrument(Protocol):
    def process(self, line: str) -> Reply: ...


#: What a giant reply looks like: far more than any query asks for.
GIANT = b"1.0," * 25_000 + b"1.0"


class _Outgoing:
    """The bytes to send for each reply after its fault; holds a ``late`` reply back until the next one."""

    def __init__(self) -> None:
        self.held = b""

    def __call__(self, reply: Reply) -> bytes | None:
        data = self._data(reply)
        if reply.fault is not None and reply.fault.kind == "late":
            self.held += data or b""
            return None
        if data is None:
            return None
        data, self.held = self.held + data, b""
        return data

    @staticmethod
    def _data(reply: Reply) -> bytes | None:
        fault = reply.fault
        if fault is not None:
            if fault.kind == "delay":
                time.sleep(fault.seconds)
            elif fault.kind in ("drop", "disconnect"):
                return None
            elif fault.kind == "garble":
                return GARBLED + b"\n"
            elif fault.kind == "giant":
                return GIANT + b"\n"
        if reply.text is None:
            return None
        return reply.text.encode("latin-1") + b"\n"  # latin-1: binary blocks pass unchanged


def _text(line: bytes) -> str:
    """A received message as text: latin-1, so that binary blocks keep every byte; a trailing CR dropped."""
    return line.decode("latin-1").removesuffix("\r")


class _Server:
    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self):
        self._thread = threading.Thread(target=self._serve, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Serve in the calling thread until interrupted."""
        try:
            self._serve()
        finally:
            self._close()

    def _serve(self) -> None:
        raise NotImplementedError

    def _close(self) -> None:
        raise NotImplementedError


class TcpServer(_Server):
    """A virtual instrument on ``host:port`` (port 0 picks a free one; see :attr:`port`)."""

    def __init__(self, instrument: LineInstrument, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.instrument = instrument
        self._sock = socket.create_server((host, port))
        self._sock.settimeout(0.1)
        self.host, self.port = self._sock.getsockname()[:2]

    @property
    def resource(self) -> str:
        """The VISA resource string a client opens."""
        return f"TCPIP0::{self.host}::{self.port}::SOCKET"

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                self._talk(conn)

    def _talk(self, conn: socket.socket) -> None:
        conn.settimeout(0.1)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        outgoing = _Outgoing()
        while not self._stop.is_set():
            try:
                chunk = conn.recv(1 << 16)
            except TimeoutError:
                continue
            except OSError:
                return
            if not chunk:
                return
            buffer += chunk
            while True:
                line, buffer = next_message(buffer)
                if line is None:
                    break
                reply = self.instrument.process(_text(line))
                if reply.fault is not None and reply.fault.kind == "disconnect":
                    return
                data = outgoing(reply)
                if data is not None:
                    try:
                        conn.sendall(data)
                    except OSError:
                        return

    def _close(self) -> None:
        self._sock.close()


class PtyServer(_Server):
    """A virtual instrument behind a pseudo-terminal in raw mode; clients open :attr:`port` with pyserial."""

    def __init__(self, instrument: LineInstrument) -> None:
        super().__init__()
        self.instrument = instrument
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        tty.setraw(self._master)
        self.port = os.ttyname(self._slave)

    @property
    def resource(self) -> str:
        return self.port

    def _serve(self) -> None:
        buffer = b""
        outgoing = _Outgoing()
        while not self._stop.is_set():
            ready, _, _ = select.select([self._master], [], [], 0.1)
            if not ready:
                continue
            try:
                chunk = os.read(self._master, 1 << 16)
            except OSError:
                time.sleep(0.01)
                continue
            buffer += chunk
            while True:
                line, buffer = next_message(buffer)
                if line is None:
                    break
                data = outgoing(self.instrument.process(_text(line)))
                while data:
                    data = data[os.write(self._master, data):]

    def _close(self) -> None:
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
