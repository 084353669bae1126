"""The house's boundaries: the controller never imports simulators or drivers except at the composition root."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSITION_ROOTS = {"protocol.py"}
FORBIDDEN = ("aeqprop.simulators", "aeqprop.drivers", "simulators", "drivers")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(("." * node.level) + node.module)
    return names


CONTROLLER = sorted(p for p in (ROOT / "aeqprop").rglob("*.py"))


@pytest.mark.parametrize("path", CONTROLLER, ids=lambda p: str(p.relative_to(ROOT)))
def test_controller_imports_no_simulator_or_driver(path: Path) -> None:
    """Only the composition root may name concrete systems; learning code sees the contract alone."""
    if path.name in COMPOSITION_ROOTS and path.parent.name == "aeqprop":
        return
    bad = {n for n in _imports(path) if n.startswith(FORBIDDEN)}
    assert not bad, f"{path} imports {bad}"


def test_simulators_depend_on_contract_not_on_learning_code() -> None:
    """Simulators know physics, not learning: they may import the contract and the shared device model
    (aeqprop.devicemodel: one pulse-response curve for the true devices and the controller's nominal
    model) but no rule or trainer."""
    allowed = {"aeqprop.system", "aeqprop.devicemodel"}
    for path in (ROOT / "simulators").rglob("*.py"):
        used = {n for n in _imports(path) if n.startswith("aeqprop")}
        assert used <= allowed | {n for n in used if n.startswith("aeqprop.simulators")}, f"{path}: {used}"


def test_installed_package_maps_source_folders() -> None:
    """drivers/ and simulators/ install as aeqprop.drivers / aeqprop.simulators, not as top-level packages."""
    import importlib.util

    import aeqprop.drivers
    import aeqprop.simulators

    assert Path(aeqprop.simulators.__file__).parent.name in {"simulators"}
    assert importlib.util.find_spec("aeqprop.protocols") is not None
