"""The protocol-file reference, generated from the pydantic models so that it cannot drift from the code.

``python -m aeqprop.reference > docs/protocol-reference.md`` rewrites the page; a test fails when the page
and the models disagree. Every registered system kind and learning rule gets its own table, so a plug-in
installed next to aeqprop appears in the reference of that environment too.
"""

from __future__ import annotations

import sys
from typing import Any, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from . import registry
from .data import DataConfig
from .protocol import Protocol, RunConfig, SGDConfig


def _type_name(annotation: Any) -> str:
    """A short, readable type: ``float | list[float]``, ``"a" | "b"``, a nested section's name."""
    origin = get_origin(annotation)
    if origin is None:
        if isinstance(annotation, type):
            return annotation.__name__
        return str(annotation).replace("typing.", "")
    args = get_args(annotation)
    if str(origin) in ("typing.Literal",) or getattr(origin, "__name__", "") == "Literal":
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`" for a in args)
    if origin in (list, tuple, set, frozenset, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in args if a is not Ellipsis)}]"
    if getattr(origin, "__name__", "") == "Annotated" or str(origin) == "typing.Annotated":
        return _type_name(args[0])
    names = [_type_name(a) for a in args]
    return " \\| ".join(n for n in names if n != "NoneType") + (" \\| none" if "NoneType" in names else "")


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    if field.default_factory is not None:
        return "*(section)*"
    value = field.default
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, BaseModel):
        return "*(section)*"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        return f'`"{value}"`'
    return f"`{value}`"


def _nested(annotation: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation (``X | None``, ``list[X]``): they get tables of their own."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in get_args(annotation):
        found.extend(_nested(arg))
    return found


def _table(title: str, model: type[BaseModel], intro: str = "") -> list[str]:
    lines = [f"### {title}", ""]
    doc = intro or (model.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    if doc:
        lines += [doc, ""]
    lines += ["| field | type | default | meaning |", "|---|---|---|---|"]
    children: list[tuple[str, type[BaseModel]]] = []
    for name, field in model.model_fields.items():
        text = (field.description or "").replace("|", "\\|").replace("\n", " ")
        lines.append(f"| `{name}` | {_type_name(field.annotation)} | {_default(field)} | {text} |")
        for child in _nested(field.annotation):
            children.append((f"{title.split(' ')[0].rstrip(']')}.{name}]", child))
    lines.append("")
    for child_title, child in children:
        lines += _table(child_title, child)
    return lines


_TOP = {
    "version": "Version of the protocol format.",
    "system": "What to train: `kind` names a registered system (`aeqprop systems` lists them).",
    "algorithm": "The learning rule: `kind` names a registered rule (default `ep`).",
    "data": "Which data set and how targets are encoded.",
    "run": "Epochs, seed, batching, checkpoints and where results go.",
}


def protocol_reference() -> str:
    """The whole reference page as Markdown."""
    out = [
        "# Protocol reference",
        "",
        "Generated from the settings models by `python -m aeqprop.reference` (do not edit by hand; a test "
        "checks that it matches the code). Narrative and examples: [protocols.md](protocols.md). Unknown "
        "fields are errors; every number must be finite unless its row says otherwise.",
        "",
        "## Top level",
        "",
        "| field | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for name, field in Protocol.model_fields.items():
        meaning = field.description or _TOP.get(name, "")
        out.append(f"| `{name}` | {'section' if name != 'version' else '`1`'} | {_default(field)} | {meaning} |")
    out += ["", "## Sections", ""]
    out += _table("[run]", RunConfig)
    out += _table("[data]", DataConfig)
    out += _table("[optimizer]", SGDConfig)
    out += ["## `[system]` kinds", ""]
    for kind in registry.names(registry.SYSTEMS):
        cls = registry.system_settings(kind)
        out += _table(f'[system] kind = "{kind}"', cls, cls.description)
    out += ["## `[algorithm]` kinds", ""]
    for kind in registry.names(registry.RULES):
        cls = registry.rule_settings(kind)
        out += _table(f'[algorithm] kind = "{kind}"', cls, cls.description)
    return "\n".join(out).rstrip() + "\n"


if __name__ == "__main__":
    sys.stdout.write(protocol_reference())
