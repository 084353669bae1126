"""The entry-point registries and the settings contract checked when a plug-in loads."""

from __future__ import annotations

from typing import ClassVar, Literal

import numpy as np
import pytest
from pydantic import ConfigDict

from aeqprop import registry
from aeqprop.data import DataSource
from aeqprop.protocol import ProtocolError, check_pairing, validate_raw
from aeqprop.settings import RuleSettings, SystemSettings, settings_problems


@pytest.mark.parametrize("kind", registry.names(registry.SYSTEMS))
def test_every_builtin_system_loads_and_keeps_the_contract(kind: str) -> None:
    cls = registry.system_settings(kind)
    assert issubclass(cls, SystemSettings) and cls.model_fields["kind"].default == kind
    assert cls.description and "\n" not in cls.description


@pytest.mark.parametrize("kind", registry.names(registry.RULES))
def test_every_builtin_rule_loads(kind: str) -> None:
    assert issubclass(registry.rule_settings(kind), RuleSettings)


@pytest.mark.parametrize("name", registry.names(registry.DATASETS))
def test_every_builtin_data_set_loads(name: str) -> None:
    assert issubclass(registry.data_source(name), DataSource)


def test_builtins_are_registered_through_entry_points() -> None:
    """Nothing is hard-coded: the names are exactly those of the pyproject tables."""
    assert {"resistive", "hopfield-floating", "rig", "smu-rig"} <= set(registry.names(registry.SYSTEMS))
    assert set(registry.names(registry.RULES)) >= {"ep", "cep", "aeqprop"}
    assert {"digits", "iris", "mnist"} <= set(registry.names(registry.DATASETS))


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(registry.RegistryError, match=r"unknown system kind 'quantum'; known: .*resistive"):
        registry.system_settings("quantum")


class _Good(SystemSettings):
    description: ClassVar[str] = "a test system"
    kind: Literal["good"] = "good"

    def build(self, rng: np.random.Generator):
        raise NotImplementedError

    def capabilities(self) -> frozenset[str]:
        return frozenset({"homeostatic"})

    def feature_counts(self) -> tuple[int, int]:
        return 4, 3


class _NoBuild(SystemSettings):
    description: ClassVar[str] = "no build"
    kind: Literal["nobuild"] = "nobuild"

    def capabilities(self) -> frozenset[str]:
        return frozenset()

    def feature_counts(self) -> tuple[int, int]:
        return 1, 1


class _Loose(_Good):
    model_config = ConfigDict(extra="allow")
    description: ClassVar[str] = ""


def test_contract_problems_are_named() -> None:
    assert settings_problems(_Good, SystemSettings, "good") == []
    assert settings_problems(int, SystemSettings, "x") == [
        "is <class 'int'>, not a subclass of aeqprop.SystemSettings"]
    assert settings_problems(_NoBuild, SystemSettings, "nobuild") == ["does not implement build"]
    problems = settings_problems(_Loose, SystemSettings, "loose")
    assert any("kind: Literal['loose']" in p for p in problems)
    assert any("description" in p for p in problems)
    assert any("extra='forbid'" in p for p in problems)


def test_fixed_coupling_is_refused_before_anything_runs() -> None:
    """aeqprop sets eps with set_coupling: a system declaring a fixed coupling fails the pairing check."""
    rule = registry.rule_settings("aeqprop")(eps=0.1)
    with pytest.raises(ValueError, match="coupling fixed by construction"):
        check_pairing(_Good(), rule, None)


def test_third_party_layer_count_is_typed() -> None:
    """Per-layer rates are checked against layer_count(), never against a probed ``hidden`` attribute."""

    class Layered(_Good):
        hidden: int = 16

        def layer_count(self) -> int:
            return 2

        def settable_coupling(self) -> bool:
            return True

    rule = registry.rule_settings("aeqprop")(eps=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="algorithm.eps"):
        check_pairing(Layered(), rule, None)
    check_pairing(Layered(), registry.rule_settings("aeqprop")(eps=[0.1, 0.2]), None)


def test_unknown_algorithm_kind_names_the_field() -> None:
    raw = {"system": {"kind": "resistive", "inputs": 64, "outputs": 10}, "algorithm": {"kind": "magic"}}
    with pytest.raises(ProtocolError, match=r"^x.toml: algorithm.kind: unknown algorithm kind 'magic'; known: "):
        validate_raw(raw, "x.toml")
