"""aeqprop: train physical learning machines with equilibrium propagation, treating them as black boxes."""

from .system import (
    AeqpropError,
    CapabilityError,
    InstrumentFault,
    LimitViolation,
    NotSettled,
    ParamSpec,
    PhysicalSystem,
    RelaxReport,
    SystemSpec,
)

__version__ = "0.1.0"

__all__ = [
    "AeqpropError",
    "CapabilityError",
    "InstrumentFault",
    "LimitViolation",
    "NotSettled",
    "ParamSpec",
    "PhysicalSystem",
    "RelaxReport",
    "SystemSpec",
    "__version__",
]
