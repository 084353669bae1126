"""The typed contract of protocol-file sections: what a system's or a learning rule's settings class provides.

A protocol file names a system by ``[system] kind = "..."`` and a rule by ``[algorithm] kind = "..."``; the
kind is looked up in the entry-point registry (:mod:`aeqprop.registry`) and the section is validated by the
settings class registered under it. Everything the controller asks of such a class is declared here, once,
so that a plug-in written outside this package knows what it must and may provide (docs/plugins.md) and so
that every mismatch is found by ``aeqprop validate`` before anything is built or written.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from .system import AeqpropError, PhysicalSystem

if TYPE_CHECKING:
    from .optim import SGD
    from .rules import LearningRule

class ProtocolError(AeqpropError):
    """A protocol file is unreadable or invalid; the message names the file, the field and the reason."""


#: ``oracle(system)`` returns this: the true gradient ``{name: dL/dθ}`` of a batch ``(x, target)``.
Oracle = Callable[[np.ndarray, np.ndarray], dict[str, np.ndarray]]


#: Largest integer a protocol may hold anywhere (numpy's int64): larger ones are refused, never wrapped.
MAX_INT = 2**63 - 1
#: Largest layer (units, features, classes) a built-in system accepts.
MAX_UNITS = 2**20
#: Longest wait or timeout a protocol may ask for (one day).
MAX_SECONDS = 86_400.0

#: Shared number types of protocol fields: finite (every float is, see :class:`Section`) and in range.
Units = Annotated[int, Field(gt=0, le=MAX_UNITS)]
Rate = Annotated[float, Field(gt=0)]
Reads = Annotated[int, Field(ge=1, le=2**16)]
Seconds = Annotated[float, Field(ge=0, le=MAX_SECONDS)]
Timeout = Annotated[float, Field(gt=0, le=MAX_SECONDS)]


def _oversized(value: Any, where: str) -> str | None:
    """The path of the first integer beyond int64 inside ``value`` (lists and tables included), if any."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        return where
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list | tuple):
        items = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return None
    for key, item in items:
        found = _oversized(item, f"{where}{key}" if str(key).startswith("[") else f"{where}.{key}" if where
                           else str(key))
        if found:
            return found
    return None


class Section(BaseModel):
    """Base of every protocol section and of its nested tables: the input rules written once.

    Unknown fields are refused; numbers are strict (``true`` is not 1, ``"3"`` is not 3; an integer is still
    a valid float); floats must be finite (no ``nan``/``inf`` unless a field says ``allow_inf_nan=True``);
    integers must fit in int64. A field's own bounds come from the shared types above or ``Field(...)``.
    """

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _int64(cls, data: Any) -> Any:
        where = _oversized(data, "") if isinstance(data, dict) else None
        if where:
            raise ValueError(f"{where}: integer out of range (more than 2**63 - 1)")
        return data


class SystemSettings(Section):
    """Base class of every ``[system]`` section: subclass it, set ``kind: Literal["name"] = "name"``.

    Must provide: ``kind`` (equal to the entry-point name), a one-line class attribute ``description``,
    :meth:`build`, :meth:`capabilities` and :meth:`feature_counts`. May override the others; their defaults
    say "no limit", "unknown", "no check", "no oracle" and "fixed coupling". Unknown fields are refused
    (``extra="forbid"``), so a misspelt setting is an error, never silently ignored.
    """

    kind: str
    #: One line shown by ``aeqprop systems``.
    description: ClassVar[str] = ""

    @abstractmethod
    def build(self, rng: np.random.Generator) -> PhysicalSystem:
        """Return the system, drawing every random initial value from ``rng`` (seeded from ``run.seed``)."""

    @abstractmethod
    def capabilities(self) -> frozenset[str]:
        """Capabilities the built system will offer (see :data:`aeqprop.system.CAPABILITIES`)."""

    @abstractmethod
    def feature_counts(self) -> tuple[int, int]:
        """(inputs, outputs): the data set must have this many features and classes."""

    def max_batch(self) -> int | None:
        """Largest batch the system accepts (hardware: 1); ``None`` means no limit."""
        return None

    def layer_count(self) -> int | None:
        """Number of weight layers (the length a per-layer rate list must have); ``None`` if not layered."""
        return None

    def check_algorithm(self, rule: RuleSettings) -> None:
        """Raise ``ValueError`` (one line) when this system cannot run ``rule`` as configured.

        For systems that fix part of the rule, e.g. a rig whose nudge is a resistor of one conductance.
        """
        return None

    def oracle(self, system: PhysicalSystem) -> Oracle | None:
        """The true-gradient function of a system this class built (simulators); ``None`` for hardware."""
        return None

    def drives_hardware(self) -> bool:
        """Whether the built system acts on real devices (``True`` unless a simulator says otherwise).

        ``aeqprop check`` then runs only the conformance checks that never reprogram a device.
        """
        return True

    def settable_coupling(self) -> bool:
        """Whether the built system's ``set_coupling`` changes the coupling ε (homeostatic systems only).

        ``False`` (the default) declares a coupling fixed by construction: a rule that must set it is refused
        at validation.
        """
        return False


class RuleSettings(Section):
    """Base class of every ``[algorithm]`` section: subclass it, set ``kind: Literal["name"] = "name"``.

    Must provide: ``kind`` (equal to the entry-point name), a one-line ``description``, :meth:`requires` and
    :meth:`build`. The others have defaults: an ``[optimizer]`` section is required, per-layer settings are
    not checked, the coupling is left alone.
    """

    kind: str
    description: ClassVar[str] = ""

    @abstractmethod
    def requires(self) -> frozenset[str]:
        """Capabilities the rule needs from the system, as configured."""

    @abstractmethod
    def build(self, system: PhysicalSystem, optimizer: SGD | None, rng: np.random.Generator) -> LearningRule:
        """Return the learning rule for ``system``; ``optimizer`` is built from ``[optimizer]`` when present."""

    def needs_optimizer(self) -> bool:
        """``True``: the protocol must have an ``[optimizer]`` section; ``False``: it must not."""
        return True

    def needs_coupling(self) -> bool:
        """Whether the rule sets the system's coupling ε (``set_coupling``)."""
        return False

    def check_layers(self, layers: int) -> None:
        """Raise ``ValueError`` when a per-layer setting does not fit a system of ``layers`` weight layers."""
        return None

    def summary(self) -> str:
        """A few words for ``aeqprop validate`` (the kind and its main choice)."""
        return self.kind


def settings_problems(cls: Any, base: type[BaseModel], name: str) -> list[str]:
    """What is wrong with ``cls`` as a settings class registered under ``name`` (empty: nothing).

    Checked when a plug-in is loaded, so that a broken plug-in fails with a reason instead of a traceback
    deep inside validation.
    """
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return [f"is {cls!r}, not a subclass of aeqprop.{base.__name__}"]
    problems = []
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        problems.append(f"does not implement {', '.join(missing)}")
    field = cls.model_fields.get("kind")
    if field is None or field.default != name:
        got = None if field is None else field.default
        problems.append(f"must declare kind: Literal[{name!r}] = {name!r} (its default kind is {got!r})")
    description = getattr(cls, "description", None)
    if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
        problems.append("needs a one-line class attribute 'description'")
    if cls.model_config.get("extra") != "forbid":
        problems.append("must keep model_config extra='forbid' (misspelt settings must be errors)")
    return problems


__all__ = [
    "MAX_INT",
    "MAX_SECONDS",
    "MAX_UNITS",
    "Oracle",
    "ProtocolError",
    "Rate",
    "Reads",
    "RuleSettings",
    "Seconds",
    "Section",
    "SystemSettings",
    "Timeout",
    "Units",
    "settings_problems",
]
