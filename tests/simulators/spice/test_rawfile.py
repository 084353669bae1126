"""The binary raw-file reader returns exactly what was written and refuses anything malformed."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.simulators.spice import RawFileError, read_raw


def _raw(names: list[str], table: np.ndarray, points: int | None = None, flags: str = "real") -> bytes:
    header = [
        "Title: test", "Date: today", "Plotname: DC transfer characteristic", f"Flags: {flags}",
        f"No. Variables: {len(names)}", f"No. Points: {table.shape[0] if points is None else points}", "Variables:",
    ]
    header += [f"\t{i}\t{name}\tvoltage" for i, name in enumerate(names)]
    return ("\n".join(header) + "\nBinary:\n").encode() + table.astype("<f8").tobytes()


def test_reads_every_point_of_every_vector_exactly(tmp_path) -> None:
    """Point-major float64 data comes back column by column, names lower-cased, bit for bit."""
    table = np.random.default_rng(0).normal(size=(4, 3))
    path = tmp_path / "a.raw"
    path.write_bytes(_raw(["v(v-sweep)", "v(N1_0)", "v(n2_1)"], table))
    plot = read_raw(path)
    assert plot.points == 4 and plot.plotname == "DC transfer characteristic"
    assert list(plot.vectors) == ["v(v-sweep)", "v(n1_0)", "v(n2_1)"]
    np.testing.assert_array_equal(plot.vectors["v(n1_0)"], table[:, 1])


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda b: b[:-8], "truncated"),
        (lambda b: b + b"\0" * 8, "more than one plot"),
        (lambda b: b.replace(b"Binary:", b"Values:"), "not a binary raw file"),
        (lambda b: b.replace(b"No. Points: 2", b"No. Points: two"), "unreadable"),
        (lambda b: b.replace(b"Flags: real", b"Flags: complex"), "only real plots"),
        (lambda b: b.replace(b"No. Variables: 2", b"No. Variables: 3"), "declares 3"),
    ],
    ids=["truncated", "trailing", "ascii", "bad-count", "complex", "var-count"],
)
def test_malformed_files_are_errors_not_numbers(tmp_path, mutate, message) -> None:
    path = tmp_path / "b.raw"
    path.write_bytes(mutate(_raw(["v(v-sweep)", "v(a)"], np.ones((2, 2)))))
    with pytest.raises(RawFileError, match=message):
        read_raw(path)


def test_missing_file_is_an_error(tmp_path) -> None:
    with pytest.raises(RawFileError, match="wrote no raw file"):
        read_raw(tmp_path / "nothing.raw")
