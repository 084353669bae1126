"""``aeqprop systems``: every registered system kind, learning rule and data set, with what it offers.

The lists come from the entry-point registries (aeqprop.registry), so a package installed with pip shows up
here with no change to aeqprop. A plug-in that breaks the settings contract is listed with the reason.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from aeqprop import registry
from aeqprop.data import DataConfig

HELP = "list the registered system kinds (capabilities, batch limit), learning rules and data sets"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")


def _defaults(cls: Any) -> Any:
    """An instance with defaults only (required fields absent): enough for most class-level answers."""
    return cls.model_construct()


def _entry_row(group: str, kind: str, settings_of: Callable[[str], Any]) -> tuple[dict[str, Any], Any]:
    """Kind, distribution and description of a registered entry, and its settings class (None if it fails to load)."""
    row: dict[str, Any] = {"kind": kind}
    try:
        row["from"] = registry.entry(group, kind).dist
        cls = settings_of(kind)
    except registry.RegistryError as exc:
        return {**row, "error": str(exc)}, None
    row["description"] = cls.description
    return row, cls


def _system_row(kind: str) -> dict[str, Any]:
    row, cls = _entry_row(registry.SYSTEMS, kind, registry.system_settings)
    if cls is None:
        return row
    probe = _defaults(cls)
    for key, call in (("capabilities", lambda: sorted(probe.capabilities())), ("max_batch", probe.max_batch)):
        try:
            row[key] = call()
        except Exception:  # the answer depends on fields only a protocol gives
            row[key] = "depends on settings"
    return row


def _rule_row(kind: str) -> dict[str, Any]:
    row, cls = _entry_row(registry.RULES, kind, registry.rule_settings)
    if cls is None:
        return row
    try:
        row["requires"] = sorted(_defaults(cls).requires())
    except Exception:
        row["requires"] = "depends on settings"
    return row


def _data_row(name: str) -> dict[str, Any]:
    row: dict[str, Any] = {"name": name}
    try:
        row["from"] = registry.entry(registry.DATASETS, name).dist
        source = registry.data_source(name)()
    except registry.RegistryError as exc:
        return {**row, "error": str(exc)}
    row["description"] = source.description
    try:
        row["features"], row["classes"] = source.shape(DataConfig(name=name))
    except Exception:
        pass
    return row


def _table(rows: list[dict[str, Any]], key: str, middle: str) -> list[str]:
    width = max((len(r[key]) for r in rows), default=0)
    lines = []
    for r in rows:
        if "error" in r:
            lines.append(f"  {r[key]:<{width}}  BROKEN: {r['error']}")
            continue
        lines.append(f"  {r[key]:<{width}}  {middle.format(**r)}  {r['description']}")
    return lines


def run(args: argparse.Namespace) -> int:
    systems = [_system_row(k) for k in registry.names(registry.SYSTEMS)]
    rules = [_rule_row(k) for k in registry.names(registry.RULES)]
    data = [_data_row(n) for n in registry.names(registry.DATASETS)]
    if args.json:
        print(json.dumps({"systems": systems, "rules": rules, "datasets": data}, indent=2))
        return 0
    for r in systems:
        if "error" not in r:
            caps = r["capabilities"]
            r["caps"] = ", ".join(caps) if isinstance(caps, list) else caps
            r["batch"] = "any" if r["max_batch"] is None else r["max_batch"]
    width = max((len(r.get("caps", "")) for r in systems), default=0)
    print("system kinds ([system] kind = ...): capabilities; largest batch")
    print("\n".join(_table(systems, "kind", f"{{caps:<{width}}}  batch {{batch!s:<4}}")))
    print("learning rules ([algorithm] kind = ...): capabilities needed")
    for r in rules:
        if "error" not in r:
            r["needs"] = ", ".join(r["requires"]) if isinstance(r["requires"], list) else r["requires"]
    needs = max((len(r.get("needs", "")) for r in rules), default=0)
    print("\n".join(_table(rules, "kind", f"{{needs:<{needs}}}")))
    print("data sets ([data] name = ...; or [data] path = a .npz file): features, classes")
    for r in data:
        r["size"] = f"{r.get('features', '?')}, {r.get('classes', '?')}"
    print("\n".join(_table(data, "name", "{size:<8}")))
    return 0
