"""Transcript transport: check a driver's exact bytes against an expected command/response list.

``Transcript([(b":OUTP OFF\\n", None), (b":SYST:ERR?\\n", b'0,"No error"\\n')])`` accepts exactly those
writes, in order, and answers each query with its reply. Any other byte string fails at once with the
expected and the actual bytes; :meth:`Transcript.assert_done` fails if expected lines were never sent.
Used by the per-driver tests and by anyone writing a new driver.
"""

from __future__ import annotations

from collections.abc import Iterable

from .transport import TransportError

__all__ = ["Transcript", "TranscriptMismatch"]


class TranscriptMismatch(AssertionError):
    """The driver sent something other than the next expected line."""


class Transcript:
    """A fake link that replays ``(sent, reply)`` pairs; ``reply`` None means no reply is read."""

    def __init__(self, pairs: Iterable[tuple[bytes, bytes | None]]) -> None:
        self._pairs = list(pairs)
        self._next = 0
        self._pending: bytes | None = None
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed:
            raise TransportError("transcript link is closed")
        self.sent.append(data)
        if self._next >= len(self._pairs):
            raise TranscriptMismatch(f"unexpected extra write {data!r} (transcript exhausted)")
        expected, reply = self._pairs[self._next]
        if data != expected:
            raise TranscriptMismatch(f"write #{self._next}: expected {expected!r}, got {data!r}")
        self._next += 1
        self._pending = reply

    def read_line(self, termination: bytes) -> bytes:
        """The pending reply up to and including ``termination`` (the whole reply when it ends with ``\\n``)."""
        pending = self._take()
        end = pending.find(termination)
        if end < 0:
            self._pending = None
            raise TransportError(f"timeout: reply {pending[:40]!r} has no {termination!r}")
        stop = end + len(termination)
        self._pending = pending[stop:] or None
        return pending[:stop]

    def read_exact(self, count: int) -> bytes:
        pending = self._take()
        if len(pending) < count:
            self._pending = None
            raise TransportError(f"timeout after {len(pending)} of {count} bytes")
        self._pending = pending[count:] or None
        return pending[:count]

    def discard(self) -> None:
        self._pending = None

    def _take(self) -> bytes:
        if self._pending is None:
            raise TranscriptMismatch("read with no reply pending (the driver read after a write-only line)")
        return self._pending

    def close(self) -> None:
        self.closed = True

    def assert_done(self) -> None:
        """Fail unless every expected line was sent."""
        if self._next != len(self._pairs):
            missing = [sent for sent, _ in self._pairs[self._next:]]
            raise TranscriptMismatch(f"{len(missing)} expected lines never sent, first {missing[0]!r}")
