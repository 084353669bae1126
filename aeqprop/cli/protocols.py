"""``aeqprop protocols``: the example protocols shipped inside the package, runnable by name.

``aeqprop run digits`` works after a plain ``pip install``: a protocol argument that is not an existing file
and names a shipped protocol (``aeqprop/protocols/<name>.toml``) is read from the package.
"""

from __future__ import annotations

import argparse
import re
from importlib import resources
from pathlib import Path

from aeqprop.protocol import ProtocolError

HELP = "list the example protocols shipped with aeqprop (run one by name: aeqprop run digits)"


def shipped() -> dict[str, Path]:
    """Name → file of every protocol inside the installed package (or the checkout's protocols/ folder)."""
    folder = resources.files("aeqprop.protocols")
    found = {Path(entry.name).stem: Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".toml")}
    return dict(sorted(found.items()))


def resolve(name_or_path: str) -> str:
    """An existing path is used as given; otherwise a shipped protocol's name (with or without ``.toml``)."""
    if Path(name_or_path).exists():
        return name_or_path
    bare = "/" not in name_or_path and "\\" not in name_or_path
    found = shipped().get(Path(name_or_path).stem) if bare else None
    if found is not None:
        return str(found)
    if bare and not name_or_path.endswith(".toml"):
        raise ProtocolError(f"{name_or_path}: no such protocol file, nor a shipped protocol "
                            "('aeqprop protocols' lists them)")
    return name_or_path


def describe(path: Path, width: int = 110) -> str:
    """The first sentence of the protocol's leading comment block, cut to ``width`` characters."""
    words: list[str] = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line.startswith("#"):
            break
        words.append(line.lstrip("#").strip())
    text = " ".join(w for w in words if w)
    match = re.search(r"(?<!\bal)\.\s", text)  # first sentence ("et al." does not end one)
    text = (text[: match.start() + 1] if match else text).rstrip(":")
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--paths", action="store_true", help="print each protocol's file path too")


def run(args: argparse.Namespace) -> int:
    table = shipped()
    width = max((len(n) for n in table), default=0)
    for name, path in table.items():
        extra = f"  ({path})" if args.paths else ""
        print(f"{name:<{width}}  {describe(path)}{extra}")
    return 0
