"""aeqprop: train physical learning machines with equilibrium propagation, treating them as black boxes."""

from __future__ import annotations

from pathlib import Path as _Path


def _join_checkout_folders() -> None:
    """Make ``aeqprop.simulators``/``drivers``/``protocols`` importable from a source checkout.

    The wheel maps the top-level folders ``simulators/``, ``drivers/`` and ``protocols/`` into the package
    (see ``[tool.setuptools.package-dir]``). In a checkout, Python imports this folder first (the current
    directory leads ``sys.path``), where those subpackages do not exist; adding the repository root to the
    package's search path finds them in their own folders. An installed package has them inside and is left
    alone.
    """
    here = _Path(__file__).resolve().parent
    root = here.parent
    if not (here / "simulators").is_dir() and (root / "simulators" / "__init__.py").is_file() \
            and (root / "pyproject.toml").is_file():
        __path__.append(str(root))


_join_checkout_folders()

from .settings import ProtocolError, RuleSettings, SystemSettings
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

__version__ = "0.2.0"

# The public Python API (docs/python-api.md); imported after __version__, which run summaries record.
from .api import Experiment, RunFailed, make_data, make_rule, make_system, run_protocol, train
from .data import Dataset
from .protocol import Protocol, load_protocol

__all__ = [
    "AeqpropError",
    "CapabilityError",
    "Dataset",
    "Experiment",
    "InstrumentFault",
    "LimitViolation",
    "NotSettled",
    "ParamSpec",
    "PhysicalSystem",
    "Protocol",
    "ProtocolError",
    "RelaxReport",
    "RuleSettings",
    "RunFailed",
    "SystemSettings",
    "SystemSpec",
    "__version__",
    "load_protocol",
    "make_data",
    "make_rule",
    "make_system",
    "run_protocol",
    "train",
]
