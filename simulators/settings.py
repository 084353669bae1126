"""Settings mechanics every layered simulator shares: its sizes, its weight-layer count, and being a simulation.

A simulator's ``[system]`` section subclasses :class:`LayeredSimulation` (declaring ``inputs``, ``hidden`` and
``outputs`` with its own descriptions), or :class:`EvenHiddenSimulation` when its hidden layers are split into
V ≥ 0 and V ≤ 0 halves, and keeps only what is its own: fields, capabilities and ``build``.
"""

from __future__ import annotations

from pydantic import field_validator

from aeqprop.settings import SystemSettings


class LayeredSimulation(SystemSettings):
    """A layered network simulated in software: inputs → hidden layers → outputs."""

    def layer_count(self) -> int:
        """Weight layers: one per hidden layer, plus the output layer."""
        return len(getattr(self, "hidden")) + 1  # noqa: B009 - declared by each subclass, with its own description

    def drives_hardware(self) -> bool:
        return False  # a simulation: every conformance check may run

    def feature_counts(self) -> tuple[int, int]:
        """(inputs, outputs) the data must provide."""
        return getattr(self, "inputs"), getattr(self, "outputs")  # noqa: B009 - declared by each subclass


class EvenHiddenSimulation(LayeredSimulation):
    """A layered simulation whose hidden layers are split into halves bounded V ≥ 0 and V ≤ 0 (docs/science.md §3)."""

    @field_validator("hidden", check_fields=False)
    @classmethod
    def _even(cls, sizes: list[int]) -> list[int]:
        bad = [n for n in sizes if n <= 0 or n % 2]
        if bad:
            raise ValueError(f"hidden sizes must be positive and even, got {bad}")
        return sizes


__all__ = ["EvenHiddenSimulation", "LayeredSimulation"]
