"""Smooth layered tanh networks (tied: an energy system that accepts complex nudges); oracle in ``oracle``."""

from .config import SmoothConfig
from .system import SmoothNetwork

__all__ = ["SmoothConfig", "SmoothNetwork"]
