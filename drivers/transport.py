"""Byte transports under the drivers: pyvisa (pyvisa-py by default) and pyserial, behind one small seam.

A transport moves raw bytes and knows nothing of commands: the driver (:mod:`aeqprop.drivers.base`) adds the
write termination, logs every line and turns failures into :class:`~aeqprop.system.InstrumentFault`. Keeping
the seam at bytes lets transcript tests (:mod:`aeqprop.drivers.transcript`) check exactly what would go on
the wire.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["SerialTransport", "Transport", "TransportError", "VisaTransport", "open_transport"]


class TransportError(OSError):
    """The link failed (timeout, closed connection, I/O error); the driver wraps it with instrument and command."""


class Transport(Protocol):
    """Raw bytes to and from one instrument."""

    def write(self, data: bytes) -> None:
        """Send ``data`` as is (the caller has appended the write termination)."""

    def read_line(self, termination: bytes) -> bytes:
        """Bytes up to and including ``termination`` (one byte); raise :class:`TransportError` on timeout or EOF."""

    def read_exact(self, count: int) -> bytes:
        """Exactly ``count`` bytes, whatever they contain (the payload of a binary block)."""

    def discard(self) -> None:
        """Drop every byte already received or arriving within a short quiet period (late replies)."""

    def close(self) -> None:
        """Release the link (idempotent)."""


class VisaTransport:
    """A pyvisa resource (pyvisa-py ``@py`` backend unless told otherwise), e.g. ``TCPIP0::host::5025::SOCKET``.

    The read termination is set on the resource so the backend stops at it; writes go out raw so the bytes
    on the wire are exactly the driver's. ``timeout_s`` bounds every read and write.
    """

    def __init__(self, resource: str, *, timeout_s: float = 5.0, backend: str = "@py",
                 read_termination: str = "\n") -> None:
        import pyvisa

        try:
            self._rm = pyvisa.ResourceManager(backend)
            self._res = self._rm.open_resource(resource, open_timeout=int(timeout_s * 1000))
        except (pyvisa.Error, OSError, ValueError) as exc:
            raise TransportError(f"cannot open {resource!r}: {exc}") from exc
        self._res.timeout = int(timeout_s * 1000)
        if resource.upper().endswith("::SOCKET"):
            self._no_delay()
        self._res.read_termination = read_termination
        self._res.write_termination = ""
        self._termination: bytes | None = read_termination.encode("ascii")
        self.resource = resource

    def _no_delay(self) -> None:
        """Set TCP_NODELAY on the socket.

        pyvisa-py sends long commands in 4 KiB chunks; with Nagle's algorithm on, the last chunk waits for the
        peer's delayed ACK (40 ms on Linux) on every long command. pyvisa-py 0.8 registers no setter for
        VI_ATTR_TCPIP_NODELAY, so the option is set on the session's socket directly when it is reachable.
        """
        import socket

        session = getattr(self._rm.visalib, "sessions", {}).get(self._res.session)
        sock = getattr(session, "interface", None)
        if isinstance(sock, socket.socket):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def write(self, data: bytes) -> None:
        import pyvisa

        try:
            self._res.write_raw(data)
        except (pyvisa.Error, OSError) as exc:
            raise TransportError(str(exc)) from exc

    def read_line(self, termination: bytes) -> bytes:
        import pyvisa

        if termination != self._termination:  # e.g. b";" between the parts of a compound reply
            self._res.read_termination = termination.decode("ascii")
            self._termination = termination
        try:
            data = bytes(self._res.read_raw())
        except (pyvisa.Error, OSError) as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        if not data.endswith(termination):
            raise TransportError(f"reply ended without the termination {termination!r}: {data[-40:]!r}")
        return data

    def read_exact(self, count: int) -> bytes:
        import pyvisa

        if self._termination is not None:  # binary payloads hold any byte: no stop at a termination
            self._res.read_termination = None
            self._termination = None
        try:
            data = bytes(self._res.read_bytes(count, break_on_termchar=False))
        except (pyvisa.Error, OSError) as exc:
            raise TransportError(str(exc) or type(exc).__name__) from exc
        if len(data) != count:
            raise TransportError(f"expected {count} bytes, got {len(data)}")
        return data

    def discard(self, quiet_s: float = 0.05) -> None:
        import pyvisa

        if self._termination != b"\n":
            self._res.read_termination = "\n"
            self._termination = b"\n"
        timeout = self._res.timeout
        self._res.timeout = max(1, int(quiet_s * 1000))
        try:
            for _ in range(1 << 12):  # bounded: a device that never stops talking is left to the caller's check
                self._res.read_raw()
        except (pyvisa.Error, OSError):
            pass
        finally:
            self._res.timeout = timeout

    def close(self) -> None:
        try:
            self._res.close()
        except Exception:
            pass


class SerialTransport:
    """A serial port through pyserial (``port`` is a device path or a pyserial URL)."""

    def __init__(self, port: str, *, baudrate: int = 115200, timeout_s: float = 5.0) -> None:
        import serial

        try:
            self._port = serial.serial_for_url(port, baudrate=baudrate, timeout=timeout_s,
                                               write_timeout=timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TransportError(f"cannot open {port!r}: {exc}") from exc
        self.resource = port
        self._buffer = b""

    def write(self, data: bytes) -> None:
        import serial

        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(str(exc)) from exc

    def read_line(self, termination: bytes) -> bytes:
        """Read what is waiting in one call per chunk (pyserial's read_until reads byte by byte)."""
        import serial

        buffer = self._buffer
        try:
            while termination not in buffer:
                chunk = self._port.read(max(1, self._port.in_waiting))
                if not chunk:
                    self._buffer = b""
                    raise TransportError(f"timeout waiting for a reply (got {buffer[-40:]!r})")
                buffer += chunk
        except (serial.SerialException, OSError) as exc:
            raise TransportError(str(exc)) from exc
        line, _, self._buffer = buffer.partition(termination)
        return line + termination

    def read_exact(self, count: int) -> bytes:
        import serial

        buffer = self._buffer
        try:
            while len(buffer) < count:
                chunk = self._port.read(max(1, min(count - len(buffer), max(1, self._port.in_waiting))))
                if not chunk:
                    self._buffer = b""
                    raise TransportError(f"timeout after {len(buffer)} of {count} bytes")
                buffer += chunk
        except (serial.SerialException, OSError) as exc:
            raise TransportError(str(exc)) from exc
        data, self._buffer = buffer[:count], buffer[count:]
        return data

    def discard(self, quiet_s: float = 0.05) -> None:
        import time

        import serial

        self._buffer = b""
        try:
            deadline = time.monotonic() + 1.0
            while time.monotonic() < deadline:
                time.sleep(quiet_s)
                if not self._port.in_waiting:
                    break
                self._port.reset_input_buffer()
        except (serial.SerialException, OSError) as exc:
            raise TransportError(str(exc)) from exc

    def close(self) -> None:
        try:
            self._port.close()
        except Exception:
            pass


def open_transport(resource: str, kind: str = "visa", *, timeout_s: float = 5.0, baudrate: int = 115200,
                   backend: str = "@py") -> Transport:
    """Open ``resource`` over ``kind`` ("visa" or "serial")."""
    if kind == "visa":
        return VisaTransport(resource, timeout_s=timeout_s, backend=backend)
    if kind == "serial":
        return SerialTransport(resource, baudrate=baudrate, timeout_s=timeout_s)
    raise ValueError(f"unknown transport {kind!r}; allowed: visa, serial")
