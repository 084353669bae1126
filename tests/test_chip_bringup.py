"""docs/chip-bringup.md, followed as written: every ``$ aeqprop ...`` line of its console blocks, in order."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from aeqprop.cli import main
from aeqprop.devicemodel import load_device_file

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "chip-bringup.md"


def commands() -> list[str]:
    lines, inside = [], False
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            inside = line.strip() == "```console"
            continue
        if inside and line.startswith("$ aeqprop "):
            lines.append(line[2:])
    return lines


def test_the_walkthrough_names_every_step() -> None:
    subcommands = [shlex.split(c)[1] for c in commands()]
    assert subcommands == ["characterise", "validate", "run", "bench", "run"]


@pytest.mark.slow
def test_walkthrough_runs_end_to_end(tmp_path, monkeypatch, capsys) -> None:
    (tmp_path / "protocols").symlink_to(ROOT / "protocols")
    monkeypatch.chdir(tmp_path)
    for command in commands():
        assert main(shlex.split(command)[1:]) == 0, command
    out = capsys.readouterr().out
    devices = load_device_file(tmp_path / "runs" / "chip" / "devices.json")
    assert devices.measured["saturated"] and devices.stuck
    assert abs(devices.pooled.levels / 48 - 1) < 0.05  # the hidden chip has 48 levels
    assert (tmp_path / "runs" / "chip" / "curves.png").stat().st_size > 10_000
    assert (tmp_path / "runs" / "chip" / "spread.png").stat().st_size > 10_000
    assert "cosine [95% CI]" in out
    for run in ("twin", "chip-train"):
        summary = json.loads((tmp_path / "runs" / run / "summary.json").read_text())
        assert summary["status"] == "completed" and summary["energy_per_sample_j"] > 0
