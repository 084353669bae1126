"""Layered nonlinear resistive networks: topology and energy, exact solver, contract adapter, oracle."""

from .config import ResistiveConfig
from .network import Topology
from .system import ResistiveNetwork

__all__ = ["ResistiveConfig", "ResistiveNetwork", "Topology"]
