"""SMU and switch drivers through the real stack: pyvisa-py over TCP to virtual instruments on 127.0.0.1."""

from __future__ import annotations

import time

import pytest
from aeqprop.drivers.base import Limits
from aeqprop.drivers.keithley707b import Keithley707B
from aeqprop.drivers.keithley2450 import Keithley2450
from aeqprop.drivers.transport import VisaTransport
from aeqprop.simulators.virtual import FaultPlan, TcpServer, Virtual707B, Virtual2450

from aeqprop.system import InstrumentFault, LimitViolation


def settled(predicate, within_s: float = 30.0) -> bool:
    """Wait for the server thread to act on a write-only line; True as soon as ``predicate`` holds.

    The bound only stops a hang: it is no timing window (a loaded machine just makes the wait longer).
    """
    deadline = time.monotonic() + within_s
    while not predicate():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


LIMITS = Limits(max_voltage_v=5.0, max_current_a=1e-3, max_pulse_v=3.0, max_pulse_width_s=1e-2)


def test_2450_measures_a_resistor_and_obeys_compliance() -> None:
    """Ohm's law through the whole stack, the compliance limit where it binds, and output off on close."""
    device = Virtual2450(ohms=1000.0)
    with TcpServer(device) as server:
        with Keithley2450(VisaTransport(server.resource, timeout_s=2), "k2450", LIMITS) as smu:
            smu.configure_voltage_source(1e-3)
            smu.enable_output()
            assert smu.source_and_measure(0.5) == pytest.approx(5e-4, rel=1e-6)
            assert smu.source_and_measure(2.0) == pytest.approx(1e-3, rel=1e-6)  # 2 mA wanted, 1 mA compliance
            assert smu.pulse_and_read(1.5, 1e-3) == pytest.approx(1e-3, rel=1e-6)
        assert settled(lambda: device.log[-1] == ":OUTP OFF")
        assert device.output is False
        assert ":SOUR:VOLT:ILIM 0.001" in device.log


def test_2450_limit_violation_never_reaches_the_instrument() -> None:
    """Through the real stack, a level beyond max_voltage_v raises and the instrument's log does not grow."""
    device = Virtual2450()
    with TcpServer(device) as server, Keithley2450(VisaTransport(server.resource, timeout_s=2), "k2450", LIMITS) as smu:
        smu.configure_voltage_source(1e-4)
        before = list(device.log)
        with pytest.raises(LimitViolation):
            smu.set_voltage(7.0)
        with pytest.raises(LimitViolation):
            smu.configure_voltage_source(0.5)
        assert device.log == before


def test_2450_injected_error_is_caught_at_configuration() -> None:
    """An error-queue entry injected mid-configuration makes configure() fail with the instrument's text."""
    device = Virtual2450(faults=FaultPlan.parse("error@3"))
    with TcpServer(device) as server:
        with pytest.raises(InstrumentFault, match="-310 System error; injected fault"), \
                Keithley2450(VisaTransport(server.resource, timeout_s=2), "k2450", LIMITS) as smu:
            smu.configure_voltage_source(1e-4)
        assert settled(lambda: device.log[-1] == ":OUTP OFF")


def test_707b_routes_over_tcp() -> None:
    """Relays close exclusively, are listed, and all open when the driver closes."""
    matrix_device = Virtual707B()
    with TcpServer(matrix_device) as server:
        with Keithley707B(VisaTransport(server.resource, timeout_s=2), "matrix") as matrix:
            matrix.reset()
            matrix.close_channels(["1A01", "1A02"])
            matrix.route(["2B03", "1C12"])
            assert matrix.closed() == ["1C12", "2B03"]
        assert settled(lambda: matrix_device.closed == set())
