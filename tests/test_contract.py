"""The resistive network honours the black-box contract; the contract's own checks work."""

from __future__ import annotations

import numpy as np
import pytest

from aeqprop.system import CapabilityError, ParamSpec, PhysicalSystem, SystemSpec

from .conftest import small_network


def test_resistive_network_is_a_physical_system(rng) -> None:
    """Every contract method exists and read_local/read_params shapes follow the spec."""
    net = small_network(hidden=(6, 4))
    assert isinstance(net, PhysicalSystem)
    assert net.spec.capabilities == {"local", "program", "stepwise", "contrast", "phases"}
    net.clamp(rng.random((3, 5)))
    net.nudge(0.0)
    net.relax()
    assert net.read_outputs().shape == (3, 3)
    local = net.read_local()
    assert set(local) == set(net.spec.params)
    for name, spec in net.spec.params.items():
        assert local[name].shape == spec.shape
        assert net.read_params()[name].shape == spec.shape


def test_program_clips_to_conductance_window(rng) -> None:
    """The device decides: a conductance asked to go below g_min or above g_max stops at the window."""
    net = small_network(g_min=0.01, g_max=0.5)
    before = net.read_params()
    g = before["g1"]
    assert g.min() >= 0.01 and g.max() <= 0.5
    net.program({"g1": np.full(g.shape, -10.0), "b1": np.full(6, 3.0)})
    after = net.read_params()
    assert np.all(after["g1"] == 0.01)
    np.testing.assert_array_equal(after["b1"], before["b1"] + 3.0)  # biases are unbounded: taken exactly
    np.testing.assert_array_equal(after["g2"], before["g2"])  # parameters not named are left alone
    net.program({"g1": np.full(g.shape, 10.0)})
    assert np.all(net.read_params()["g1"] == 0.5)


def test_program_rejects_unknown_names_and_shapes() -> None:
    net = small_network()
    with pytest.raises(KeyError, match="unknown parameter 'w9'"):
        net.program({"w9": np.zeros(3)})
    with pytest.raises(ValueError, match="expected shape"):
        net.program({"g1": np.zeros((2, 2))})


def test_missing_capability_raises(rng) -> None:
    """A network configured without 'local' refuses read_local; it never has homeostatic knobs."""
    net = small_network(offers=["program"])
    assert net.spec.capabilities == {"program"}
    net.clamp(rng.random((1, 5)))
    net.nudge(0.0)
    net.relax()
    with pytest.raises(CapabilityError, match="'local'"):
        net.read_local()
    with pytest.raises(CapabilityError):
        net.set_controls({})


def test_spec_require_names_missing_capabilities() -> None:
    spec = SystemSpec(2, 1, {"w": ParamSpec((2, 1))}, frozenset({"program"}))
    with pytest.raises(CapabilityError, match=r"missing \['local'\]"):
        spec.require({"local", "program"}, "EP")
    with pytest.raises(ValueError, match="unknown capabilities"):
        SystemSpec(2, 1, {}, frozenset({"telepathy"}))


def test_snapshot_restore_roundtrip(rng) -> None:
    """restore(snapshot()) returns parameters and warm-start state exactly."""
    net = small_network()
    x = rng.random((2, 5))
    net.clamp(x)
    net.nudge(0.0)
    net.relax()
    snap = net.snapshot()
    out_before = net.read_outputs()
    net.program({"g1": np.full(net.spec.params["g1"].shape, 0.3)})
    net.restore(snap)
    for name, value in net.read_params().items():
        np.testing.assert_array_equal(value, snap[f"param.{name}"])
    np.testing.assert_array_equal(net.read_outputs(), out_before)


def test_clamp_checks_input_width() -> None:
    net = small_network()
    with pytest.raises(ValueError, match=r"expected shape \(batch, 5\)"):
        net.clamp(np.zeros((2, 4)))
