"""Reader of ngspice's binary raw files (``set filetype=binary`` then ``write``).

The format: an ASCII header (``Title:``, ``Plotname:``, ``Flags:``, ``No. Variables:``, ``No. Points:``, a
``Variables:`` table), the line ``Binary:``, then the points one after another, each holding one float64 per
variable (two for complex plots) in the machine's byte order. Anything that does not match exactly is an
:class:`RawFileError`: a truncated or garbled file must never be read as numbers.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aeqprop.system import AeqpropError

_MARKER = b"Binary:\n"


class RawFileError(AeqpropError):
    """A raw file is missing, truncated or not in the binary format this reader understands."""


@dataclass(frozen=True)
class RawPlot:
    """One plot of a raw file: its name and one column per variable (``vectors[name]`` has shape (points,))."""

    plotname: str
    vectors: dict[str, np.ndarray]
    points: int


def _header_fields(header: str, path: Path) -> tuple[dict[str, str], list[str]]:
    """The ``key: value`` lines of the header and the variable names of its ``Variables:`` table."""
    fields: dict[str, str] = {}
    names: list[str] = []
    lines = header.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Variables:"):
            rows = [row.split() for row in lines[i + 1 :] if row.strip()]
            names = [cells[1] if len(cells) >= 3 else "" for cells in rows]
            break
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip()] = value.strip()
    for key in ("Flags", "No. Variables", "No. Points"):
        if key not in fields:
            raise RawFileError(f"{path}: raw file header has no {key!r} line")
    return fields, names


def read_raw(path: str | Path) -> RawPlot:
    """Read the first (and only) plot of a binary raw file written by ngspice."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RawFileError(f"{path}: ngspice wrote no raw file") from None
    cut = data.find(_MARKER)
    if cut < 0:
        raise RawFileError(f"{path}: not a binary raw file (no 'Binary:' line; was filetype=binary set?)")
    header = data[:cut].decode("ascii", errors="replace")
    fields, names = _header_fields(header, path)
    flags = fields["Flags"].split()
    if "real" not in flags:
        raise RawFileError(f"{path}: only real plots are supported, got flags {fields['Flags']!r}")
    try:
        n_vars, n_points = int(fields["No. Variables"]), int(fields["No. Points"])
    except ValueError:
        raise RawFileError(f"{path}: unreadable variable or point count in the header") from None
    if len(names) != n_vars or any(not n for n in names):
        raise RawFileError(f"{path}: header lists {len(names)} variables but declares {n_vars}")
    body = data[cut + len(_MARKER) :]
    expected = 8 * n_vars * n_points
    if len(body) != expected:
        raise RawFileError(
            f"{path}: {len(body)} bytes of data where {n_points} points x {n_vars} variables need {expected} "
            "(truncated file, or more than one plot)"
        )
    order = "<" if sys.byteorder == "little" else ">"
    table = np.frombuffer(body, dtype=np.dtype(f"{order}f8")).reshape(n_points, n_vars)
    vectors = {name.lower(): table[:, j].copy() for j, name in enumerate(names)}
    return RawPlot(fields.get("Plotname", ""), vectors, n_points)


__all__ = ["RawFileError", "RawPlot", "read_raw"]
