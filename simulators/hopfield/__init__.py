"""Layered hard-sigmoid Hopfield networks whose parameters float: energy, exact solver, contract adapter, oracle."""

from .config import FloatingHopfieldConfig
from .network import Topology
from .system import FloatingHopfield

__all__ = ["FloatingHopfield", "FloatingHopfieldConfig", "Topology"]
