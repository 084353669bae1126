"""``aeqprop systems`` lists the registries; ``aeqprop check`` runs the conformance kit on a protocol's system."""

from __future__ import annotations

import json

import pytest

from aeqprop import registry
from aeqprop.cli import main

TINY = """
version = 1
[system]
kind = "resistive"
inputs = 4
hidden = [4]
outputs = 3
[data]
name = "iris"
[optimizer]
kind = "sgd"
lr = 0.1
"""


def test_systems_lists_every_registered_name(capsys) -> None:
    assert main(["systems"]) == 0
    out = capsys.readouterr().out
    for kind in registry.names(registry.SYSTEMS) + registry.names(registry.RULES):
        assert f"  {kind} " in out
    assert "local, program, stepwise" in out  # resistive's capabilities
    rig = next(line for line in out.splitlines() if line.startswith("  rig "))
    assert "batch 1" in rig and "crossbar front-end board" in rig


def test_systems_json(capsys) -> None:
    assert main(["systems", "--json"]) == 0
    listing = json.loads(capsys.readouterr().out)
    by_kind = {row["kind"]: row for row in listing["systems"]}
    assert by_kind["smu-rig"]["max_batch"] == 1 and by_kind["resistive"]["max_batch"] is None
    assert by_kind["hopfield-floating"]["capabilities"] == ["homeostatic"]
    iris = next(row for row in listing["datasets"] if row["name"] == "iris")
    assert (iris["features"], iris["classes"]) == (4, 3)


def test_check_runs_the_conformance_kit(tmp_path, capsys) -> None:
    pytest.importorskip("aeqprop.testing", reason="the conformance kit (branch kit) is not merged yet")
    protocol = tmp_path / "tiny.toml"
    protocol.write_text(TINY)
    assert main(["check", str(protocol)]) == 0
    out = capsys.readouterr().out
    assert "all checks" in out and "0 failed" in out
    assert main(["check", str(protocol), "--check", "no-such-check"]) == 2
    assert "unknown checks" in capsys.readouterr().err
