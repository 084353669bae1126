"""Every built-in system passes the conformance kit; rigs pass its hardware-safe subset over virtual instruments."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from aeqprop.protocol import load_protocol
from aeqprop.testing import CHECKS, ConformanceError, check_system

from .drivers import test_floating_rig_end_to_end as floating_e2e
from .drivers import test_rig_end_to_end as crossbar_e2e
from .drivers import test_smu_rig_end_to_end as smu_e2e
from .simulators.spice.conftest import ngspice_or_skip


def _built_in_settings() -> dict[str, type]:
    """kind -> settings class of every system aeqprop itself registers (the test below covers each one)."""
    from aeqprop.registry import SYSTEMS, entry, names, system_settings

    # the built-in kinds are those the aeqprop distribution registers
    return {kind: system_settings(kind) for kind in names(SYSTEMS)
            if entry(SYSTEMS, kind).dist.split(" ")[0].lower() == "aeqprop"}  # "aeqprop" or "aeqprop (source tree)"


SETTINGS = _built_in_settings()

#: Small settings of each simulated kind (extra cases narrow the capabilities, so gating is exercised too).
SIMULATED = {
    "resistive": {"inputs": 3, "hidden": [4], "outputs": 2, "bias_init": 0.1, "g_max": 2.0},
    "resistive[program only]": {"inputs": 3, "hidden": [4], "outputs": 2, "offers": ["program"]},
    "resistive-floating": {"inputs": 3, "hidden": [4], "outputs": 2, "bias_init": 0.1},
    "hopfield": {"inputs": 3, "hidden": [4], "outputs": 2, "bias_init": 0.1},
    "hopfield[program only]": {"inputs": 3, "hidden": [4], "outputs": 2, "offers": ["program"]},
    "hopfield-floating": {"inputs": 3, "hidden": [4], "outputs": 2, "bias_init": 0.1},
    "smooth": {"inputs": 3, "hidden": [4], "outputs": 2},
    "smooth[no complex]": {"inputs": 3, "hidden": [4], "outputs": 2,
                           "offers": ["local", "program"]},
    "asymmetric": {"inputs": 3, "hidden": [4, 4], "outputs": 2},
    "crossbar": {"inputs": 3, "hidden": [4], "outputs": 2},
    "spice": {"inputs": 3, "hidden": [4], "outputs": 2, "bias_init": 0.1},
}
#: Hardware kinds: checked over virtual instruments in hardware-safe mode (tests further below).
RIGS = {"rig", "smu-rig", "floating-rig"}


def _kind(case: str) -> str:
    return case.split("[")[0]


def test_every_kind_has_a_conformance_case() -> None:
    """A new kind cannot slip past the kit: each one needs a case here (simulated, or a rig test below)."""
    assert {_kind(c) for c in SIMULATED} | RIGS == set(SETTINGS)


@pytest.mark.parametrize("case", sorted(SIMULATED))
def test_simulated_system_passes_every_check(case: str) -> None:
    kind = _kind(case)
    if kind == "spice":
        ngspice_or_skip()
    settings = SETTINGS[kind](**SIMULATED[case])
    report = check_system(lambda: settings.build(np.random.default_rng(0)))
    assert report.ok
    offered = settings.build(np.random.default_rng(0)).spec.capabilities
    allowed = {"batch", "program"} | ({"contrast", "phases"} - offered)
    assert not set(report.skipped) - allowed, report.skipped  # only what the kind cannot do
    assert set(report.passed) | set(report.skipped) == set(CHECKS)


def test_hardware_safe_mode_skips_what_reprograms() -> None:
    settings = SETTINGS["resistive"](**SIMULATED["resistive"])
    report = check_system(lambda: settings.build(np.random.default_rng(0)), hardware_safe=True)
    assert {name for name, why in report.skipped.items() if "reprograms" in why} == {
        "restore", "program", "contrast", "phases", "unstable-nudge"}


def test_unknown_check_names_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown checks"):
        check_system(lambda: None, checks=["no-such-check"])  # type: ignore[arg-type,return-value]


# --- rigs over virtual instruments (the protocols and servers of the end-to-end rig tests) --------------------
@pytest.fixture
def simulated(tmp_path: Path) -> Path:
    """A small resistive network's protocol (iris, 4-4-3)."""
    sim, _ = smu_e2e.write_protocols(tmp_path)
    return sim


@pytest.fixture
def crossbar_rig(tmp_path: Path) -> Iterator[tuple[Path, object]]:
    """A rig protocol pointing at a virtual crossbar board (pyvisa-py over TCP on 127.0.0.1)."""
    sim, _ = crossbar_e2e.write_protocols(tmp_path)
    with crossbar_e2e.served(sim) as server:
        _, rig = crossbar_e2e.write_protocols(tmp_path, server.resource)
        yield rig, server.instrument


@pytest.fixture
def smu_rig(tmp_path: Path) -> Iterator[tuple[Path, object]]:
    """An smu-rig protocol pointing at a bench of virtual SMUs and a 707B, one TCP port each."""
    sim, _ = smu_e2e.write_protocols(tmp_path)
    with smu_e2e.served(sim) as (bench, resources):
        _, rig = smu_e2e.write_protocols(tmp_path, resources)
        yield rig, bench.network


@pytest.fixture
def floating_rig(tmp_path: Path) -> Iterator[tuple[Path, object]]:
    """A floating-rig protocol pointing at a virtual floating board (pyvisa-py over TCP on 127.0.0.1)."""
    sim, _ = floating_e2e.write_protocols(tmp_path)
    with floating_e2e.served(sim) as server:
        _, rig = floating_e2e.write_protocols(tmp_path, server.resource)
        yield rig, server.instrument


@pytest.mark.parametrize("fixture", ["crossbar_rig", "smu_rig", "floating_rig"])
def test_rig_passes_the_hardware_safe_checks_and_is_not_reprogrammed(fixture: str, request) -> None:
    """The hardware-safe subset passes over the real stacks and leaves the device's parameters untouched."""
    protocol_path, device = request.getfixturevalue(fixture)
    served = device.system if hasattr(device, "system") else device
    before = served.snapshot()
    settings = load_protocol(protocol_path).system
    report = check_system(lambda: settings.build(np.random.default_rng(0)), hardware_safe=True, atol=1e-9,
                          rtol=1e-6)
    assert report.ok
    assert set(report.skipped) >= {"restore", "program", "unstable-nudge"}
    after = served.snapshot()
    # what the controller sets: programmed parameters, or the knobs of a floating system (whose parameters
    # relax with the state by design, so every relaxation moves them)
    held = "control." if any(k.startswith("control.") for k in before) else "param."
    for key, value in before.items():
        if key.startswith(held):
            assert np.array_equal(after[key], value), f"{fixture}: {key} was reprogrammed in hardware-safe mode"


def test_conformance_error_lists_every_failure() -> None:
    """raise_on_failure (the default) raises one error naming each failed check."""
    settings = SETTINGS["resistive"](**SIMULATED["resistive"])

    def factory():
        system = settings.build(np.random.default_rng(0))
        first_close, calls = system.close, []

        def close() -> None:  # works once, then refuses: not idempotent
            calls.append(1)
            if len(calls) > 1:
                raise RuntimeError("already closed")
            first_close()

        system.close = close  # type: ignore[method-assign]
        return system

    with pytest.raises(ConformanceError) as caught:
        check_system(factory, checks=["close", "spec"])
    assert caught.value.report.failed_checks() == ["close"]
    assert caught.value.report.passed == ["spec"]
    assert "[close] a second close() on a fresh system raised RuntimeError: already closed" in str(caught.value)


# --- aeqprop check -------------------------------------------------------------------------------------------
def test_check_command_runs_every_check_on_a_simulator(simulated: Path, capsys) -> None:
    from aeqprop.cli import main

    assert main(["check", str(simulated)]) == 0
    # the simulator of the rig tests offers no "phases" (it settles the phases in turn, as the rig does)
    assert f"{simulated}: system 'resistive', all checks: 12 passed, 0 failed, 1 skipped" in capsys.readouterr().out


def test_check_command_on_a_rig_leaves_the_device_alone_unless_asked(crossbar_rig, capsys) -> None:
    """A rig (max_batch 1) gets the hardware-safe subset by default; --reprogram runs the rest too."""
    from aeqprop.cli import main

    rig, board = crossbar_rig
    before = board.system.snapshot()
    assert main(["check", str(rig), "--atol", "1e-9", "--rtol", "1e-6"]) == 0
    out = capsys.readouterr().out
    assert "system 'rig', hardware-safe checks: 7 passed, 0 failed, 6 skipped" in out
    assert "skip [program] reprograms the device (hardware_safe=True)" in out
    after = board.system.snapshot()
    assert all(np.array_equal(after[k], v) for k, v in before.items() if k.startswith("param."))
    main(["check", str(rig), "--atol", "1e-9", "--rtol", "1e-6", "--reprogram"])
    assert "system 'rig', all checks:" in capsys.readouterr().out
    assert not np.array_equal(board.system.snapshot()["param.g1"], before["param.g1"])


def test_check_command_names_what_fails_and_exits_1(simulated: Path, capsys) -> None:
    """A system that cannot settle within its budget fails the checks that relax it, each named."""
    from aeqprop.cli import main

    assert main(["check", str(simulated), "--set", "system.max_sweeps=1"]) == 1
    out = capsys.readouterr().out
    assert "FAIL [determinism] raised NotSettled" in out and "FAIL [batch] raised NotSettled" in out
