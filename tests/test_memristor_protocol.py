"""Crossbar protocols end to end: validation of the pulse pairing, the preset, and exact resume with all noise on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from aeqprop.cli import main
from aeqprop.protocol import ProtocolError, build, load_protocol
from aeqprop.rundir import RunDirectory

ROOT = Path(__file__).resolve().parents[1]
PRESET = ROOT / "protocols" / "digits-memristor.toml"
SMALL = ["system.hidden=[16]", "data.train_limit=40", "data.test_limit=20", "run.epochs=1"]


def test_preset_is_realistic_and_builds_a_pulse_programmed_crossbar() -> None:
    """The preset meets the issue's bar: >= 32 levels, nonlinear both ways, c2c, d2d, 1 % read noise."""
    protocol = load_protocol(PRESET)
    device = protocol.system.device
    assert device.levels >= 32 and np.isfinite(device.a_pot) and np.isfinite(device.a_dep)
    assert device.c2c > 0 and device.d2d > 0 and device.read_noise == 0.01
    parts = build(protocol)
    assert "pulse" in parts.system.spec.capabilities and "pulse" in parts.rule.requires
    assert parts.rule.programmer is not None


def test_pulse_programming_on_a_system_without_pulses_is_refused_at_validation(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match=r"capabilities \['local', 'program', 'pulse'\].*system 'resistive'"):
        load_protocol(ROOT / "protocols" / "digits.toml", ["algorithm.programming={levels = 32}"])


def _params(folder: Path) -> dict[str, np.ndarray]:
    arrays, state = RunDirectory.open(folder).load_checkpoint()
    return {**arrays, "rule": np.array(str(state["rule"])), "shuffle": np.array(str(state["shuffle_rng"]))}


@pytest.mark.slow
def test_resume_is_exact_with_device_noise_write_verify_and_adaptive_reads(tmp_path: Path) -> None:
    """2 epochs straight == 1 epoch, then --resume for the second: devices, generators and read policy match."""
    sets = [*SMALL, "algorithm.programming.write_verify=true", "algorithm.adaptive_reads=true",
            "algorithm.reads=2", "system.device.drift=0.001", "system.read_noise_v=0.05", "algorithm.beta=0.2"]
    flags = [a for s in sets for a in ("--set", s)]
    straight, split = tmp_path / "straight", tmp_path / "split"
    assert main(["run", str(PRESET), *flags, "--set", "run.epochs=2", "--out", str(straight), "--no-progress"]) == 0
    assert main(["run", str(PRESET), *flags, "--out", str(split), "--no-progress"]) == 0
    assert main(["run", str(PRESET), *flags, "--set", "run.epochs=2", "--resume", str(split), "--no-progress"]) == 0
    a, b = _params(straight), _params(split)
    assert set(a) == set(b) and "crossbar.rng" in a and "device.g1.g" in a
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    metrics = RunDirectory.open(straight).read_metrics()[-1]
    assert metrics["reads"] >= 2 and metrics["pulses_per_step"] > 0 and "verify_rounds_per_step" in metrics
