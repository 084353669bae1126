"""The layered resistive network solved by ngspice: netlist writer, batch runner, raw-file reader, checks."""

from .config import SpiceConfig
from .diodes import BehaviouralDiode, JunctionDiode
from .netlist import SolverOptions
from .rawfile import RawFileError, read_raw
from .runner import INSTALL_HINT, NgspiceError, NgspiceNotFound, find_ngspice, run_netlist
from .system import SpiceNetwork

__all__ = [
    "INSTALL_HINT",
    "BehaviouralDiode",
    "JunctionDiode",
    "NgspiceError",
    "NgspiceNotFound",
    "RawFileError",
    "SolverOptions",
    "SpiceConfig",
    "SpiceNetwork",
    "find_ngspice",
    "read_raw",
    "run_netlist",
]
