"""Untied (asymmetric) layered networks: vector-field dynamics with no energy, probed by state kicks."""

from .config import AsymmetricConfig
from .system import AsymmetricNetwork

__all__ = ["AsymmetricConfig", "AsymmetricNetwork"]
