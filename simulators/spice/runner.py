"""Run ngspice in batch mode on one netlist and return the swept node voltages.

Why batch mode (``ngspice -b``) and not the shared library through ctypes: a separate process cannot take the
controller down with it (a segfault or ``exit()`` inside libngspice kills the host), leaves no global state
between solves, is bounded by a timeout, and costs about 8 ms to start, which is small next to the matrix setup
of a network worth simulating. Every file lives in a :class:`tempfile.TemporaryDirectory` that is removed
whatever happens.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from aeqprop.system import AeqpropError, NotSettled

from .rawfile import RawFileError, read_raw

INSTALL_HINT = "install it (Debian/Ubuntu: apt-get install -y ngspice; macOS: brew install ngspice)"
RAW_NAME = "solution.raw"
NETLIST_NAME = "network.cir"

#: ngspice output that means the operating point is not to be trusted, even when the process exits 0.
_CONVERGENCE = re.compile(
    r"iteration limit|gmin stepping failed|source stepping failed|singular matrix|timestep too small|"
    r"simulation\(s\) aborted|no convergence|not converge",
    re.IGNORECASE,
)
_ERROR = re.compile(r"^\s*(error|fatal)\b|\berror:", re.IGNORECASE)
_ITERATIONS = re.compile(r"Total iterations\s*=\s*(\d+)")


class NgspiceError(AeqpropError):
    """ngspice is missing, crashed, timed out, or rejected the netlist."""


class NgspiceNotFound(NgspiceError):
    """The ngspice executable cannot be found."""


@dataclass(frozen=True)
class Solution:
    """Node voltages of every sweep point (``voltages[name]`` has shape (points,)) and Newton iterations spent."""

    voltages: dict[str, np.ndarray]
    iterations: int
    log: str


def find_ngspice(executable: str = "ngspice") -> str:
    """Absolute path of the ngspice executable, or :class:`NgspiceNotFound` saying how to install it."""
    found = shutil.which(executable)
    if found is None:
        raise NgspiceNotFound(f"ngspice executable {executable!r} not found on PATH: {INSTALL_HINT}")
    return found


def _problems(log: str, pattern: re.Pattern[str]) -> list[str]:
    return [line.strip() for line in log.splitlines() if pattern.search(line)]


def run_netlist(netlist: str, points: int, executable: str = "ngspice", timeout_s: float = 600.0) -> Solution:
    """Solve ``netlist`` (which writes ``RAW_NAME`` in its control block) and check it swept ``points`` points.

    Raises :class:`NgspiceError` for a failed run and :class:`~aeqprop.system.NotSettled` when ngspice reports
    a convergence problem or returns fewer points than asked for.
    """
    exe = find_ngspice(executable)
    with tempfile.TemporaryDirectory(prefix="aeqprop-ngspice-") as tmp:
        folder = Path(tmp)
        (folder / NETLIST_NAME).write_text(netlist)
        env = {**os.environ, "LC_ALL": "C"}
        try:
            proc = subprocess.run(
                [exe, "-b", "-n", NETLIST_NAME], cwd=folder, capture_output=True, text=True,
                timeout=timeout_s, env=env, check=False,
            )
        except subprocess.TimeoutExpired:
            raise NgspiceError(f"ngspice did not finish within {timeout_s:g} s (raise system.timeout_s)") from None
        log = proc.stdout + proc.stderr
        convergence = _problems(log, _CONVERGENCE)
        if convergence:
            raise NotSettled(f"ngspice did not converge: {'; '.join(convergence[:3])}")
        errors = _problems(log, _ERROR)
        if proc.returncode != 0 or errors:
            detail = "; ".join(errors[:3]) or (log.strip().splitlines() or ["no output"])[-1]
            raise NgspiceError(f"ngspice failed (exit {proc.returncode}): {detail}")
        try:
            plot = read_raw(folder / RAW_NAME)
        except RawFileError as exc:
            raise NgspiceError(str(exc).replace(str(folder), "<tmp>")) from None
    if plot.points != points:
        raise NotSettled(f"ngspice swept {plot.points} of {points} points: the sweep stopped early")
    match = _ITERATIONS.search(log)
    iterations = int(match.group(1)) if match else 0
    return Solution(plot.vectors, iterations, log)


__all__ = [
    "INSTALL_HINT",
    "NETLIST_NAME",
    "RAW_NAME",
    "NgspiceError",
    "NgspiceNotFound",
    "Solution",
    "find_ngspice",
    "run_netlist",
]
