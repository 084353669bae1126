"""Characterisation against simulated crossbars whose device parameters the test draws and keeps to itself.

Stated tolerances (pooled fit vs the true nominal parameters, 320 devices, 3 cycles of 64-pulse trains):
levels within 3 %, A_pot and A_dep within 10 %, c2c within 8 %, d2d (spread of g_max) within 15 %, read
noise within 6 %, g_max within 3 % and g_min within 15 %; every stuck device found and nothing else listed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from aeqprop.simulators.memristor import CrossbarConfig

from aeqprop.characterise import BudgetExhausted, CharacterisationError, Characteriser, Settings
from aeqprop.characterise_fit import fit
from aeqprop.devicemodel import load_device_file
from aeqprop.programming import NominalDevice, PulseProgrammer, measured_devices
from aeqprop.rundir import RunDirectory


def hidden_device(seed: int) -> dict[str, float]:
    """Device parameters drawn here and never passed to the characterisation."""
    r = np.random.default_rng(seed)
    return {
        "g_min": float(r.uniform(0.002, 0.02)), "g_max": float(r.uniform(0.2, 0.6)),
        "levels": int(r.integers(20, 45)), "a_pot": float(r.uniform(0.7, 4.0)), "a_dep": float(r.uniform(0.7, 4.0)),
        "c2c": float(r.uniform(0.004, 0.012)), "d2d": float(r.uniform(0.05, 0.15)),
        "read_noise": float(r.uniform(0.002, 0.01)), "stuck_min": 0.02, "stuck_max": 0.02,
    }


def chip(device: dict[str, float], seed: int = 1):
    return CrossbarConfig(inputs=8, hidden=[16], outputs=4, device=device).build(np.random.default_rng(seed))


def rel(a: float, b: float) -> float:
    return abs(a / b - 1)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_fit_recovers_hidden_parameters_and_finds_stuck_devices(seed: int) -> None:
    truth = hidden_device(seed)
    system = chip(truth, seed)
    settings = Settings(cycles=3, pulses=64)
    result = fit(Characteriser(system, settings).run(), settings, system.spec.description)
    p = result.pooled
    assert rel(p.levels, truth["levels"]) < 0.03, (p.levels, truth["levels"])
    assert rel(p.a_pot, truth["a_pot"]) < 0.10, (p.a_pot, truth["a_pot"])
    assert rel(p.a_dep, truth["a_dep"]) < 0.10, (p.a_dep, truth["a_dep"])
    assert rel(p.c2c, truth["c2c"]) < 0.08, (p.c2c, truth["c2c"])
    assert rel(p.d2d, truth["d2d"]) < 0.15, (p.d2d, truth["d2d"])
    assert rel(p.read_noise, truth["read_noise"]) < 0.06, (p.read_noise, truth["read_noise"])
    assert rel(p.g_max, truth["g_max"]) < 0.03 and rel(p.g_min, truth["g_min"]) < 0.15
    true_stuck = {(name, tuple(map(int, idx)), int(a.stuck[idx]))
                  for name, a in system.devices.items() for idx in zip(*np.nonzero(a.stuck), strict=True)}
    found = {(s.param, tuple(s.index), 1 if s.at == "g_max" else -1) for s in result.stuck}
    assert true_stuck and found == true_stuck


def test_per_device_fit_tracks_device_to_device_spread() -> None:
    """The per-device windows follow the true ones device by device (not just on average)."""
    system = chip(hidden_device(21) | {"d2d": 0.2}, 3)
    settings = Settings(cycles=2, pulses=64)
    result = fit(Characteriser(system, settings).run(), settings)
    for name, devices in system.devices.items():
        ok = devices.stuck == 0
        fitted = result.devices[name].array("g_max")[ok]
        assert np.corrcoef(fitted, devices.g_max[ok])[0, 1] > 0.99
        assert np.median(np.abs(fitted / devices.g_max[ok] - 1)) < 0.02


def test_linear_devices_fit_as_linear() -> None:
    system = chip({"g_max": 0.4, "levels": 32, "read_noise": 0.002}, 2)
    settings = Settings(cycles=1, pulses=48)
    p = fit(Characteriser(system, settings).run(), settings).pooled
    assert math.isinf(p.a_pot) and math.isinf(p.a_dep)
    assert rel(p.levels, 32) < 0.03 and p.c2c < 2e-3 and not p.stuck_min and not p.stuck_max


def test_budget_is_checked_before_anything_is_sent() -> None:
    with pytest.raises(CharacterisationError, match="max-pulses 300: the plan fires 512 pulses per device"):
        Settings(cycles=3, pulses=64, max_pulses=300)
    with pytest.raises(CharacterisationError, match="multiple of --step"):
        Settings(pulses=64, step=5)


class Interrupting:
    """A chip whose link drops (KeyboardInterrupt) at the ``after``-th pulse command."""

    def __init__(self, system, after: int) -> None:
        self._system, self._left = system, after

    def __getattr__(self, name):
        return getattr(self._system, name)

    def apply_pulses(self, counts) -> None:
        self._left -= 1
        if self._left < 0:
            raise KeyboardInterrupt
        self._system.apply_pulses(counts)


def test_interrupted_characterisation_resumes_to_the_same_measurements(tmp_path) -> None:
    device = hidden_device(5)
    settings = Settings(cycles=2, pulses=32, step=2)
    straight = Characteriser(chip(device), settings).run()
    run_dir = RunDirectory.create(tmp_path / "c", {"note": "test"})
    with pytest.raises(KeyboardInterrupt):
        Characteriser(Interrupting(chip(device), after=40), settings, run_dir).run()
    resumed = Characteriser(chip(device), settings, run_dir)
    resumed.resume()
    assert 3 <= resumed.data.phases_done < len(resumed.phases())
    data = resumed.run()
    for name in straight.curves:
        np.testing.assert_array_equal(data.curves[name], straight.curves[name])
        np.testing.assert_array_equal(data.noise[name], straight.noise[name])
    assert data.pulses_fired == straight.pulses_fired == settings.planned_pulses()


def test_time_budget_stops_at_a_phase_and_checkpoints(tmp_path) -> None:
    run_dir = RunDirectory.create(tmp_path / "c", {"note": "test"})
    settings = Settings(cycles=1, pulses=16, max_seconds=0.0)
    with pytest.raises(BudgetExhausted, match="--resume"):
        Characteriser(chip(hidden_device(6)), settings, run_dir).run()
    assert run_dir.has_checkpoint()


def test_device_file_round_trip_builds_a_faithful_twin(tmp_path) -> None:
    truth = hidden_device(31)
    system = chip(truth)
    settings = Settings(cycles=2, pulses=64)
    result = fit(Characteriser(system, settings).run(), settings)
    path = tmp_path / "devices.json"
    result.save(path)
    assert json.loads(path.read_text())["version"] == 1
    twin = CrossbarConfig(inputs=8, hidden=[16], outputs=4, device_file=str(path)).build(np.random.default_rng(9))
    for name, devices in system.devices.items():
        np.testing.assert_array_equal(twin.devices[name].stuck, devices.stuck)
        ok = devices.stuck == 0
        assert np.median(np.abs(twin.devices[name].g_max[ok] / devices.g_max[ok] - 1)) < 0.02


def test_measured_model_programs_more_accurately_than_the_pooled_one() -> None:
    """Open-loop programming error on a chip with a large device-to-device spread: per-device beats pooled."""
    truth = hidden_device(41) | {"d2d": 0.25, "c2c": 0.002, "stuck_min": 0.0, "stuck_max": 0.0}
    settings = Settings(cycles=2, pulses=64)
    result = fit(Characteriser(chip(truth), settings).run(), settings)
    pooled, per_group = measured_devices(result, chip(truth).spec.params)
    errors = {}
    for label, groups in (("pooled", {}), ("measured", per_group)):
        system = chip(truth)
        before = {n: a.g.copy() for n, a in system.devices.items()}
        delta = {n: np.full(g.shape, 0.15 * truth["g_max"]) * np.sign(0.5 * truth["g_max"] - g)
                 for n, g in before.items()}
        PulseProgrammer(pooled, np.random.default_rng(0), "nearest", per_group=groups).program(system, delta, reads=8)
        errors[label] = np.mean(np.concatenate([
            np.abs(system.devices[n].g - before[n] - delta[n]).ravel() for n in before]))
    assert errors["measured"] < 0.6 * errors["pooled"], errors
    assert isinstance(pooled, NominalDevice)


def test_device_file_errors_name_the_file(tmp_path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 1, "pooled": {"g_min": 0.5, "g_max": 0.1}}')
    with pytest.raises(ValueError, match=r"bad.json: pooled"):
        load_device_file(bad)


def test_program_only_system_is_characterised_through_program() -> None:
    """A system without pulses: "pulses" are program steps of window/(0.8 pulses); an ideal network is linear."""
    from aeqprop.simulators.resistive import ResistiveConfig

    system = ResistiveConfig(inputs=3, hidden=[4], outputs=2, g_max=1.0).build(np.random.default_rng(0))
    assert "pulse" not in system.spec.capabilities
    settings = Settings(cycles=1, pulses=40, noise_reads=4)
    p = fit(Characteriser(system, settings).run(), settings).pooled
    assert math.isinf(p.a_pot) and math.isinf(p.a_dep)
    assert rel(p.levels, 32) < 0.01 and rel(p.g_max, 1.0) < 1e-6 and p.g_min < 1e-9 and p.c2c < 1e-3


def test_drift_rate_is_the_relative_slope_per_second() -> None:
    from aeqprop.characterise_fit import drift_rates

    times = np.array([0.0, 1.0, 2.0, 3.0])
    g0 = np.array([[0.1, 0.2]])
    drift = g0[None] * (1 - 0.01 * times)[:, None, None]
    np.testing.assert_allclose(drift_rates(drift, times), [-0.01, -0.01])


def test_cli_user_errors_exit_2_and_write_nothing(tmp_path, capsys) -> None:
    from aeqprop.cli import main

    protocol = tmp_path / "chip.toml"
    protocol.write_text(
        'version = 1\n[system]\nkind = "crossbar"\ninputs = 4\nhidden = [4]\noutputs = 3\n[system.device]\n'
        'levels = 16\n[algorithm]\nkind = "ep"\n[optimizer]\nkind = "sgd"\nlr = 0.1\n[data]\nname = "iris"\n'
    )
    out = tmp_path / "c"
    assert main(["characterise", str(protocol), "--out", str(out), "--max-pulses", "10"]) == 2
    assert main(["characterise", str(protocol), "--out", str(out), "--pulses", "10", "--step", "3"]) == 2
    assert not out.exists()
    err = capsys.readouterr().err
    assert "--max-pulses 10" in err and "--step (3)" in err
    assert main(["characterise", str(protocol), "--out", str(out), "--pulses", "24", "--cycles", "1"]) == 0
    assert load_device_file(out / "devices.json").pooled.levels == pytest.approx(16, rel=0.05)
    assert main(["characterise", str(protocol), "--out", str(out)]) == 2  # exists: use --resume


def test_cli_fault_exits_1_with_the_measurements_checkpointed(tmp_path, monkeypatch, capsys) -> None:
    """An instrument fault mid-plan: exit 1, one line, no traceback; --resume then finishes the device file."""
    from aeqprop.simulators.memristor.crossbar import CrossbarNetwork

    from aeqprop.cli import main
    from aeqprop.system import InstrumentFault

    protocol = tmp_path / "chip.toml"
    protocol.write_text(
        'version = 1\n[system]\nkind = "crossbar"\ninputs = 4\nhidden = [4]\noutputs = 3\n[system.device]\n'
        'levels = 16\n[algorithm]\nkind = "ep"\n[optimizer]\nkind = "sgd"\nlr = 0.1\n[data]\nname = "iris"\n'
    )
    original = CrossbarNetwork.apply_pulses
    calls = {"n": 0}

    def flaky(self, counts):
        calls["n"] += 1
        if calls["n"] == 30:
            raise InstrumentFault("crossbar: no reply to 'PULS'")
        return original(self, counts)

    monkeypatch.setattr(CrossbarNetwork, "apply_pulses", flaky)
    out = tmp_path / "c"
    assert main(["characterise", str(protocol), "--out", str(out), "--pulses", "24", "--cycles", "1"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "InstrumentFault" in err[0] and f"--resume {out}" in err[0]
    assert (out / "checkpoint.npz").is_file() and not (out / "devices.json").exists()
    assert main(["characterise", str(protocol), "--resume", str(out), "--pulses", "24", "--cycles", "1"]) == 0
    assert load_device_file(out / "devices.json").measured["pulses_per_device"] == 4 * 24


def test_twin_with_another_layout_is_refused_naming_the_file(tmp_path) -> None:
    from pydantic import ValidationError

    settings = Settings(cycles=1, pulses=48)
    path = tmp_path / "devices.json"
    fit(Characteriser(chip(hidden_device(7)), settings).run(), settings).save(path)
    with pytest.raises(ValidationError, match=r"devices.json: g1 was measured with shape \(16, 16\)"):
        CrossbarConfig(inputs=8, hidden=[32], outputs=4, device_file=str(path))
    with pytest.raises(ValidationError, match="either"):
        CrossbarConfig(inputs=8, hidden=[16], outputs=4, device_file=str(path), device={"levels": 8})
