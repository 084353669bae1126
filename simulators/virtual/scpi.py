"""Message framing of the virtual instruments: lines that may carry IEEE-488.2 definite-length binary blocks.

A block is ``#<n><length><bytes>``: ``n`` (1-9) digits give the payload's length, and the payload may hold any
byte, ``\\n`` and ``;`` included. Messages are therefore split at a line end or a ``;`` only outside blocks.
Text travels as latin-1 inside the servers, so that every byte maps to one character and back unchanged.
This is the instrument's side, written independently of the driver's parser so that each checks the other.
"""

from __future__ import annotations

import numpy as np

__all__ = ["BlockError", "block", "next_message", "parse_block", "split_units"]


class BlockError(ValueError):
    """A binary block that is not exactly what its header says."""


def _skip_block(data: bytes | str, at: int) -> int | None:
    """Index just past the block starting at ``data[at] == '#'``; ``at + 1`` when it is not a block header;
    None when more bytes are needed to know."""
    digit = data[at + 1 : at + 2]
    if not digit:
        return None
    if digit not in (b"123456789" if isinstance(data, bytes) else "123456789"):
        return at + 1
    n = int(digit)
    length = data[at + 2 : at + 2 + n]
    if len(length) < n:
        return None
    if not length.isdigit():
        return at + 1
    end = at + 2 + n + int(length)
    return end if end <= len(data) else None


def next_message(buffer: bytes) -> tuple[bytes | None, bytes]:
    """Split one ``\\n``-terminated message off ``buffer`` (blocks skipped); (None, buffer) when incomplete."""
    at = 0
    while True:
        newline, hash_ = buffer.find(b"\n", at), buffer.find(b"#", at)
        if newline < 0 and hash_ < 0:
            return None, buffer
        if hash_ < 0 or 0 <= newline < hash_:
            return buffer[:newline], buffer[newline + 1 :]
        skipped = _skip_block(buffer, hash_)
        if skipped is None:
            return None, buffer
        at = skipped


def split_units(message: str) -> list[str]:
    """The ``;``-separated units of a message, with ``;`` inside blocks left alone."""
    units, start, at = [], 0, 0
    while True:
        semi, hash_ = message.find(";", at), message.find("#", at)
        if semi < 0:
            units.append(message[start:])
            return units
        if 0 <= hash_ < semi:
            skipped = _skip_block(message, hash_)
            at = len(message) if skipped is None else skipped
            continue
        units.append(message[start:semi])
        start = at = semi + 1


def parse_block(text: str, count: int) -> np.ndarray:
    """Exactly ``count`` big-endian float64 from one whole block given as latin-1 text; else BlockError."""
    data = text.lstrip(" ").encode("latin-1")  # never strip the end: the payload may end in any byte
    if len(data) < 2 or data[:1] != b"#" or not b"1" <= data[1:2] <= b"9":
        raise BlockError("not a definite-length block")
    n = int(data[1:2])
    length = data[2 : 2 + n]
    if len(length) != n or not length.isdigit() or len(data) != 2 + n + int(length):
        raise BlockError("block length does not match its header")
    if int(length) != 8 * count:
        raise BlockError(f"expected {count} values, got {int(length) / 8:g}")
    return np.frombuffer(data, dtype=">f8", offset=2 + n).astype(np.float64)


def block(values: np.ndarray) -> str:
    """``values`` as one block of big-endian float64, in latin-1 text."""
    payload = np.asarray(values, dtype=">f8").ravel().tobytes()
    length = str(len(payload))
    return f"#{len(length)}{length}" + payload.decode("latin-1")
