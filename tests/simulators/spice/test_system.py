"""The ngspice network behind the contract: same network as the resistive one, batches in one process, no
litter, and every failure a clear error instead of a wrong state."""

from __future__ import annotations

import subprocess
import tempfile

import numpy as np
import pytest
from aeqprop.simulators.resistive import oracle
from aeqprop.simulators.resistive.network import local_gradients
from aeqprop.simulators.spice import (
    JunctionDiode,
    NgspiceError,
    NgspiceNotFound,
    SolverOptions,
    SpiceConfig,
    SpiceNetwork,
    run_netlist,
)
from aeqprop.simulators.spice import runner as runner_module

from aeqprop.system import CapabilityError, NotSettled, PhysicalSystem

from .conftest import REQUIRE_ENV, network_pair, ngspice_or_skip


def test_same_seed_same_network_as_the_resistive_simulator() -> None:
    """Both configs draw the initial conductances and biases identically from the same seed (no ngspice needed)."""
    spice, resistive = network_pair(seed=3, hidden=[8, 4])
    for name, value in resistive.read_params().items():
        np.testing.assert_array_equal(spice.read_params()[name], value)
    assert spice.spec.params == resistive.spec.params
    assert spice.spec.capabilities == {"local", "program"}


def test_contract_and_local_measurements_match_the_resistive_network(ngspice, rng) -> None:
    """read_local from ngspice's node voltages equals the resistive network's at the same equilibrium."""
    spice, resistive = network_pair(hidden=[8, 4])
    assert isinstance(spice, PhysicalSystem)
    x, y = rng.random((3, 6)), rng.random((3, 3))
    for net in (spice, resistive):
        net.clamp(x)
        net.nudge(0.5, y)
        net.relax()
    v_in, layers = oracle.equilibrium(resistive, x, beta=0.5, target=y)
    want = local_gradients(resistive.read_params(), v_in, layers)
    got = spice.read_local()
    assert set(got) == set(spice.spec.params)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-9, atol=1e-10, err_msg=name)
    assert spice.read_outputs().shape == (3, 3)


def test_program_clips_to_the_window_and_snapshot_restores(ngspice, rng) -> None:
    """program honours [g_min, g_max]; restore(snapshot()) brings back parameters and the same equilibrium."""
    spice, _ = network_pair(g_min=0.01, g_max=0.5)
    x = rng.random((2, 6))
    spice.clamp(x)
    spice.nudge(0.0)
    spice.relax()
    before, snap = spice.read_outputs(), spice.snapshot()
    spice.program({"g1": np.full(spice.spec.params["g1"].shape, -10.0)})
    assert np.all(spice.read_params()["g1"] == 0.01)
    spice.program({"g1": np.full(spice.spec.params["g1"].shape, 10.0)})
    assert np.all(spice.read_params()["g1"] == 0.5)
    spice.restore(snap)
    spice.clamp(x)
    spice.nudge(0.0)
    spice.relax()
    np.testing.assert_array_equal(spice.read_outputs(), before)
    with pytest.raises(KeyError, match="unknown parameter"):
        spice.program({"w9": np.zeros(2)})
    with pytest.raises(CapabilityError):
        spice.set_controls({})


def test_a_batch_is_one_ngspice_process_and_matches_one_by_one(ngspice, rng, monkeypatch) -> None:
    """Five inputs take one ngspice run (one .dc sweep), and sweep point b is exactly sample b's solution."""
    spice, _ = network_pair(hidden=[8])
    calls = []
    real_run = subprocess.run

    def counting_run(*args, **kwargs):
        calls.append(args[0])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(runner_module.subprocess, "run", counting_run)
    x, y = rng.random((5, 6)), rng.random((5, 3))
    spice.clamp(x)
    spice.nudge(0.3, y)
    spice.relax()
    assert len(calls) == 1 and "-b" in calls[0]
    batch = spice.read_outputs()
    for b in range(5):
        spice.clamp(x[b : b + 1])
        spice.nudge(0.3, y[b : b + 1])
        spice.relax()
        np.testing.assert_allclose(spice.read_outputs()[0], batch[b], atol=1e-10)
    assert len(calls) == 6


def test_no_temporary_files_are_left_behind(ngspice, rng, tmp_path, monkeypatch) -> None:
    """After a good solve and after a failed one, the temporary folder is as empty as before."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    folders = []
    real_run = subprocess.run

    def recording_run(*args, **kwargs):
        folders.append(kwargs["cwd"])
        return real_run(*args, **kwargs)

    monkeypatch.setattr(runner_module.subprocess, "run", recording_run)
    spice, _ = network_pair()
    spice.clamp(rng.random((2, 6)))
    spice.nudge(0.0)
    spice.relax()
    assert folders and all(f.parent == tmp_path for f in folders)  # the solve did work in the watched folder
    with pytest.raises(NgspiceError):
        run_netlist("broken\nR1 a\n.end\n", 1)
    assert list(tmp_path.iterdir()) == []


def test_missing_ngspice_says_how_to_install_it(rng) -> None:
    spice = SpiceConfig(inputs=2, hidden=[2], outputs=1, ngspice="/nonexistent/ngspice").build(rng)
    spice.clamp(rng.random((1, 2)))
    spice.nudge(0.0)
    with pytest.raises(NgspiceNotFound, match="apt-get install -y ngspice"):
        spice.relax()


def test_require_env_turns_the_skip_into_a_failure(monkeypatch) -> None:
    """Without ngspice the tests skip with the install hint, unless AEQPROP_REQUIRE_NGSPICE=1 (CI) fails them."""
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install"):
        ngspice_or_skip()
    monkeypatch.setenv(REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=REQUIRE_ENV):
        ngspice_or_skip()


def test_ngspice_errors_are_reported_with_its_message(ngspice) -> None:
    """A netlist ngspice rejects raises NgspiceError quoting ngspice's own error line."""
    with pytest.raises(NgspiceError, match="(?i)unknown subckt"):
        run_netlist("bad\nXnothing a b c\n.control\nquit 0\n.endc\n.end\n", 1)


def test_tiny_emission_coefficient_is_caught_not_returned(ngspice, rng) -> None:
    """The trap of the notes: N = 1e-7 at ngspice's default tolerances converges to a wrong state in a warm-started
    sweep. The check of every node against Kirchhoff's and the diode's laws turns it into NotSettled naming a node."""
    spice, _ = network_pair(hidden=[10, 6], inputs=8)
    loose = SolverOptions(reltol=1e-3, vntol_v=1e-6, abstol_a=1e-12)
    trapped = SpiceNetwork(spice.topology, spice.read_params(), diode=JunctionDiode(1e-14, 1e-7, 0.0), options=loose)
    trapped.clamp(np.random.default_rng(1).random((5, 8)))
    trapped.nudge(0.0)
    with pytest.raises(NotSettled,
                       match=r"not the circuit's operating point at node n\d_\d+ \(layer \d, index \d+, sample \d\)"):
        trapped.relax()


def test_config_refuses_tiny_emission_coefficients() -> None:
    with pytest.raises(ValueError, match="greater than or equal to 0.001"):
        SpiceConfig(inputs=2, outputs=1, diode="junction", diode_n=1e-7)


def test_negative_nudge_beyond_the_output_conductance_is_refused(ngspice, rng) -> None:
    """ngspice would return the saddle point of an unstable circuit; the system refuses, as the resistive one does."""
    spice, _ = network_pair()
    spice.clamp(rng.random((1, 6)))
    spice.nudge(-1e3, rng.random((1, 3)))
    with pytest.raises(NotSettled, match="energy unbounded below"):
        spice.relax()


def test_junction_diode_is_a_real_diode(ngspice, rng) -> None:
    """With the 1N4148-like junction, excitatory nodes go below 0 V by a forward drop (the ideal diode would hold
    them within 1e-11 V of 0) yet stay within the sources' range; the state passed the diode-law check."""
    spice, _ = network_pair(hidden=[40], diode="junction", input_gain=5.0)
    spice.clamp(rng.random((8, 6)))
    spice.nudge(0.0)
    spice.relax()
    hidden = spice.node_voltages()[0]
    excitatory, inhibitory = hidden[:, :20], hidden[:, 20:]
    assert excitatory.min() < -0.3 and inhibitory.max() > 0.3
    assert np.abs(hidden).max() <= 5.0
