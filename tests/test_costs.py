"""Time and energy per training sample: the crossbar's modelled costs, a rig's measured instrument time."""

from __future__ import annotations

import json

import numpy as np
import pytest
from aeqprop.simulators.memristor import CrossbarConfig
from aeqprop.simulators.resistive import ResistiveConfig

from aeqprop.cli import main
from aeqprop.costs import per_sample, read_cost


def test_relaxation_energy_is_power_times_settle_time() -> None:
    cfg = CrossbarConfig(inputs=3, hidden=[4], outputs=2, tau_s=2e-6, settle_taus=3.0)
    system = cfg.build(np.random.default_rng(0))
    x = np.random.default_rng(1).uniform(0, 1, (5, 3))
    system.clamp(x)
    system.relax()
    snap = system.snapshot()
    nodes = [np.concatenate([4 * x, -4 * x], axis=1), np.array(snap["state.0"]), np.array(snap["state.1"])]
    power = 0.0
    for k in (1, 2):  # Σ over samples and devices of g (V_i − V_j)², written out directly
        g = np.array(snap[f"param.g{k}"])
        drop = nodes[k - 1][:, :, None] - nodes[k][:, None, :]
        power += float(np.sum(g * drop**2))
    cost = system.cost()
    assert cost["relax_time_s"] == pytest.approx(6e-6)
    assert cost["relax_energy_j"] == pytest.approx(power * 6e-6, rel=1e-9)
    assert cost["program_energy_j"] == 0.0


def test_programming_energy_counts_every_pulse() -> None:
    cfg = CrossbarConfig(inputs=3, hidden=[4], outputs=2, device={"g_max": 0.5, "levels": 10, "pulse_v": 2.0,
                                                                  "pulse_width_s": 1e-6})
    system = cfg.build(np.random.default_rng(0))
    counts = {"g1": np.zeros((6, 4), dtype=np.int64), "g2": np.zeros((4, 2), dtype=np.int64)}
    before = system.devices["g1"].g[0, 0]
    counts["g1"][0, 0] = 2
    system.apply_pulses(counts)
    after = system.devices["g1"].g[0, 0]
    cost = system.cost()
    assert cost["program_energy_j"] == pytest.approx(2 * 4.0 * 1e-6 * 0.5 * (before + after))
    assert cost["program_time_s"] == pytest.approx(2e-6)


def test_systems_without_costs_report_none() -> None:
    system = ResistiveConfig(inputs=3, hidden=[4], outputs=2).build(np.random.default_rng(0))
    assert read_cost(system) is None
    assert per_sample(None, None, 10) == {}
    assert per_sample({"time_s": 1.0, "energy_j": 2.0}, {"time_s": 3.0, "energy_j": 6.0}, 4) == {
        "time_per_sample_s": 0.5, "energy_per_sample_j": 1.0}


def test_run_reports_time_and_energy_per_sample(tmp_path) -> None:
    protocol = tmp_path / "p.toml"
    protocol.write_text(
        'version = 1\n[system]\nkind = "crossbar"\ninputs = 4\nhidden = [4]\noutputs = 3\ntau_s = 1e-6\n'
        'settle_taus = 4\n[system.device]\nlevels = 32\n[algorithm]\nkind = "ep"\nbeta = 0.1\n'
        '[algorithm.programming]\nlevels = 32\n[optimizer]\nkind = "sgd"\nlr = 0.05\n'
        '[data]\nname = "iris"\ntrain_limit = 100\n'
        '[run]\nepochs = 2\nbatch_size = 5\n'
    )
    assert main(["run", str(protocol), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    for r in records:
        # centered EP: 3 relaxations per batch of 5, 4 µs each (training only; evaluation is not counted)
        assert r["relax_time_per_sample_s"] == pytest.approx(3 * 4e-6 / 5)
        assert r["energy_per_sample_j"] == pytest.approx(r["relax_energy_per_sample_j"]
                                                         + r["program_energy_per_sample_j"])
        assert r["program_energy_per_sample_j"] > 0
    assert summary["energy_per_sample_j"] == pytest.approx(np.mean([r["energy_per_sample_j"] for r in records]))


def test_rig_reports_measured_instrument_time() -> None:
    """A rig's time is what its instrument exchanges took (measured), growing with every command."""
    from tests.drivers.test_crossbar_transcript import FREE, LEV, e, rig

    system, _ = rig([e(f"{LEV};:{FREE};:INIT;:STAT:SETT?;:MEAS:OUT? 1", "0.5,0.25;0.0,0.0;1,3,1e-07;0.3")],
                    prefetch=True)
    start = system.cost()["time_s"]
    assert start > 0  # configuring the board already took instrument time
    system.clamp(np.array([[0.5, 0.25]]))
    system.nudge(0.0)
    system.relax()
    assert system.cost()["time_s"] > start and set(system.cost()) == {"time_s"}
