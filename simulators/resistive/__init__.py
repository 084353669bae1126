"""Layered nonlinear resistive networks: topology and energy, exact solver, contract adapter, oracle."""

from .config import ResistiveConfig
from .floating import FloatingResistiveConfig, FloatingResistiveNetwork
from .network import Topology
from .system import ResistiveNetwork

__all__ = ["FloatingResistiveConfig", "FloatingResistiveNetwork", "ResistiveConfig", "ResistiveNetwork", "Topology"]
