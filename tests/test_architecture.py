"""The house's boundaries: the controller never imports simulators or drivers except at the composition root.

These tests read the source tree next to them and import the package the way a user would, so they hold for a
checkout, an editable install and a regular install alike.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMPOSITION_ROOTS = {"protocol.py"}
FORBIDDEN = ("aeqprop.simulators", "aeqprop.drivers", "simulators", "drivers")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
    """Simulators know physics, not learning: they may import the contracts (aeqprop.system, aeqprop.settings)
    and the shared device model (aeqprop.devicemodel: one pulse-response curve for the true devices and the
    controller's nominal model), but no rule or trainer."""
    allowed = {"aeqprop.system", "aeqprop.settings", "aeqprop.devicemodel"}
    for path in (ROOT / "simulators").rglob("*.py"):
        used = {n for n in _imports(path) if n.startswith("aeqprop")}
        assert used <= allowed | {n for n in used if n.startswith("aeqprop.simulators")}, f"{path}: {used}"


#: What the contract modules are: every layer may import them.
CONTRACTS = {"aeqprop.system", "aeqprop.settings"}


@pytest.mark.parametrize("path", sorted((ROOT / "drivers").rglob("*.py")), ids=lambda p: p.name)
def test_drivers_depend_on_contract_and_their_own_package(path: Path) -> None:
    """Drivers talk to instruments and implement the contract: from aeqprop they import the contract modules and
    their own package (relative imports, one level), never a simulator, a rule or the trainer."""
    bad = set()
    for name in _imports(path):
        if name.startswith("."):
            if name.startswith(".."):
                bad.add(name)
        elif name.split(".")[0] in {"aeqprop", "simulators", "drivers", "protocols"}:
            if name not in CONTRACTS and not name.startswith("aeqprop.drivers"):
                bad.add(name)
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


_PROBE = """
import json, sys
from pathlib import Path
import aeqprop, aeqprop.protocol, aeqprop.drivers.rig, aeqprop.simulators.resistive, aeqprop.protocols
print(json.dumps({
    "top_level": sorted({m.split(".")[0] for m in sys.modules} & {"simulators", "drivers", "protocols"}),
    "folders": {name: Path(sys.modules["aeqprop." + name].__file__).resolve().parent.name
                for name in ("simulators", "drivers", "protocols")},
    "module": aeqprop.simulators.resistive.ResistiveNetwork.__module__,
}))
"""


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_package_maps_source_folders_wherever_python_starts(where: str, tmp_path: Path) -> None:
    """drivers/, simulators/ and protocols/ import as aeqprop.drivers / .simulators / .protocols, never as
    top-level packages, both from the repository root (the checkout shadows any install) and from elsewhere
    (the installed package, editable or not)."""
    cwd = ROOT if where == "checkout" else tmp_path
    done = subprocess.run([sys.executable, "-c", _PROBE], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["top_level"] == []
    assert seen["folders"] == {"simulators": "simulators", "drivers": "drivers", "protocols": "protocols"}
    assert seen["module"] == "aeqprop.simulators.resistive.system"
