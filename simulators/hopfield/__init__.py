"""Layered hard-sigmoid Hopfield networks: energy, exact solver, and two contract adapters sharing them: fixed
parameters (``hopfield``, classic EP) and parameters floating under knobs (``hopfield-floating``, Aeqprop)."""

from .config import FloatingHopfieldConfig, HopfieldConfig
from .fixed import HopfieldNetwork
from .network import Topology
from .system import FloatingHopfield

__all__ = ["FloatingHopfield", "FloatingHopfieldConfig", "HopfieldConfig", "HopfieldNetwork", "Topology"]
