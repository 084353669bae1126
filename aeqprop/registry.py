"""Entry-point registries: which system kinds, learning rules and data sets a protocol file may name.

Three groups, read with :mod:`importlib.metadata` (the packaging convention, so a ``pip install``-ed package
adds names with no change to aeqprop): ``aeqprop.systems`` (name = ``[system] kind``, value = a
:class:`~aeqprop.settings.SystemSettings` subclass), ``aeqprop.rules`` (name = ``[algorithm] kind``, value = a
:class:`~aeqprop.settings.RuleSettings` subclass) and ``aeqprop.datasets`` (name = ``data.name``, value = a
:class:`~aeqprop.data.DataSource` subclass). aeqprop registers its own through the same tables in its
``pyproject.toml``; there is no other list.

From a source checkout the built-in names are read from that checkout's ``pyproject.toml`` (the installed
metadata may be stale, or absent); other distributions' entry points come from the installed metadata.
Lookups are cached per process; sweep workers and Dask workers are fresh processes and read them again.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .system import AeqpropError

SYSTEMS = "aeqprop.systems"
RULES = "aeqprop.rules"
DATASETS = "aeqprop.datasets"
GROUPS = (SYSTEMS, RULES, DATASETS)
_WHAT = {SYSTEMS: "system kind", RULES: "algorithm kind", DATASETS: "data set"}
_DIST = "aeqprop"


class RegistryError(AeqpropError):
    """An unknown name, a name registered twice, or a plug-in that breaks the settings contract."""


@dataclass(frozen=True)
class Entry:
    """One registered name: where its class lives and which distribution registered it."""

    group: str
    name: str
    value: str
    dist: str

    def describe(self) -> str:
        return f"entry point {self.name!r} = {self.value!r} (group {self.group}, from {self.dist})"


def _checkout_pyproject() -> Path | None:
    """``pyproject.toml`` of the source tree this package is imported from, if it is one."""
    root = Path(__file__).resolve().parent.parent
    file = root / "pyproject.toml"
    if (root / "aeqprop" / "__init__.py").is_file() and file.is_file():
        try:
            if tomllib.loads(file.read_text()).get("project", {}).get("name") == _DIST:
                return file
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            return None
    return None


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return str(dist.metadata["Name"]) if dist is not None else "?"


@functools.cache
def _entries(group: str) -> dict[str, list[Entry]]:
    """Every entry of ``group`` by name (a list, so that duplicates can be reported)."""
    found: dict[str, list[Entry]] = {}
    pyproject = _checkout_pyproject()
    if pyproject is not None:
        table = tomllib.loads(pyproject.read_text()).get("project", {}).get("entry-points", {}).get(group, {})
        for name, value in table.items():
            found.setdefault(name, []).append(Entry(group, name, value, f"{_DIST} (source tree)"))
    seen: set[tuple[str, str, str]] = set()
    for ep in metadata.entry_points(group=group):
        dist = _dist_name(ep)
        if pyproject is not None and dist.lower() == _DIST:
            continue  # the source tree's own table above is authoritative
        if (ep.name, ep.value, dist) in seen:  # the same distribution seen twice on sys.path
            continue
        seen.add((ep.name, ep.value, dist))
        found.setdefault(ep.name, []).append(Entry(group, ep.name, ep.value, dist))
    return found


def names(group: str) -> list[str]:
    """Registered names of ``group``, sorted."""
    return sorted(_entries(group))


def entry(group: str, name: str) -> Entry:
    """The single entry registered under ``name``; a one-line error listing the known names otherwise."""
    entries = _entries(group).get(name)
    if not entries:
        known = ", ".join(names(group)) or "none"
        raise RegistryError(f"unknown {_WHAT[group]} {name!r}; known: {known}")
    if len(entries) > 1:
        raise RegistryError(f"{_WHAT[group]} {name!r} is registered more than once: "
                            + "; ".join(e.describe() for e in entries))
    return entries[0]


def _contract(group: str) -> tuple[type, Any]:
    """The base class of ``group`` and its checker (imported late: those modules import this one's users)."""
    if group == DATASETS:
        from .data import DataSource, source_problems

        return DataSource, source_problems
    from .settings import RuleSettings, SystemSettings, settings_problems

    return (SystemSettings if group == SYSTEMS else RuleSettings), settings_problems


@functools.cache
def load(group: str, name: str) -> Any:
    """Import the class registered under ``name`` and check it against the group's contract."""
    item = entry(group, name)
    try:
        obj = metadata.EntryPoint(item.name, item.value, item.group).load()
    except Exception as exc:  # a plug-in that cannot be imported is reported, not a traceback
        raise RegistryError(f"{item.describe()}: cannot be loaded: {type(exc).__name__}: {exc}") from None
    base, check = _contract(group)
    problems = check(obj, base, name)
    if problems:
        raise RegistryError(f"{item.describe()}: " + "; ".join(problems))
    return obj


def system_settings(kind: str) -> Any:
    """The :class:`~aeqprop.settings.SystemSettings` subclass of ``[system] kind``."""
    return load(SYSTEMS, kind)


def rule_settings(kind: str) -> Any:
    """The :class:`~aeqprop.settings.RuleSettings` subclass of ``[algorithm] kind``."""
    return load(RULES, kind)


def data_source(name: str) -> Any:
    """The :class:`~aeqprop.data.DataSource` subclass of ``data.name``."""
    return load(DATASETS, name)


def refresh() -> None:
    """Forget cached lookups (after installing a package into the running interpreter)."""
    _entries.cache_clear()
    load.cache_clear()


__all__ = [
    "DATASETS", "GROUPS", "RULES", "SYSTEMS", "Entry", "RegistryError", "data_source", "entry", "load", "names",
    "refresh", "rule_settings", "system_settings",
]
