"""Exact bytes of every SMU driver at the transport seam, against the commands of the vendors' manuals."""

from __future__ import annotations

import numpy as np
import pytest
from aeqprop.drivers.base import Limits
from aeqprop.drivers.keithley2400 import Keithley2400
from aeqprop.drivers.keithley2450 import Keithley2450
from aeqprop.drivers.keithley2600 import Keithley2600
from aeqprop.drivers.keysight_b2900 import KeysightB2900
from aeqprop.drivers.transcript import Transcript

from aeqprop.system import LimitViolation

LIMITS = Limits(max_voltage_v=5.0, max_current_a=1e-3, max_pulse_v=3.0, max_pulse_width_s=1e-3)
SCPI_OK = b'0,"No error"\n'
TSP_OK = b"0.00000e+00\tQueue Is Empty\t0.00000e+00\t1.00000e+00\n"


def w(line: str) -> tuple[bytes, None]:
    return (line.encode() + b"\n", None)


def q(line: str, reply: bytes) -> tuple[bytes, bytes]:
    return (line.encode() + b"\n", reply)


CONFIGURE = {
    Keithley2400: [w("*RST"), w(":SOUR:FUNC VOLT"), w(":SOUR:VOLT:MODE FIXED"), w(":SOUR:VOLT:RANG 2.0"),
                   w(':SENS:FUNC "CURR"'), w(":SENS:CURR:PROT 0.0001"), w(":FORM:ELEM CURR"),
                   q(":SYST:ERR?", SCPI_OK)],
    Keithley2450: [w("*RST"), w(":SOUR:FUNC VOLT"), w(":SOUR:VOLT:RANG 2.0"), w(":SOUR:VOLT:ILIM 0.0001"),
                   w(':SENS:FUNC "CURR"'), w(":SENS:CURR:RANG:AUTO ON"), q(":SYST:ERR?", SCPI_OK)],
    Keithley2600: [w("smua.reset()"), w("smua.source.func = smua.OUTPUT_DCVOLTS"), w("smua.source.rangev = 2.0"),
                   w("smua.source.limiti = 0.0001"), w("smua.measure.autorangei = smua.AUTORANGE_ON"),
                   q("print(errorqueue.next())", TSP_OK)],
    KeysightB2900: [w("*RST"), w(":SOUR1:FUNC:MODE VOLT"), w(":SOUR1:FUNC:SHAP DC"), w(":SOUR1:VOLT:RANG 2.0"),
                    w(':SENS1:FUNC "CURR"'), w(":SENS1:CURR:PROT 0.0001"), w(":SENS1:CURR:RANG:AUTO ON"),
                    q(":SYST:ERR?", SCPI_OK)],
}
SOURCE_AND_MEASURE = {
    Keithley2400: [w(":OUTP ON"), w(":SOUR:VOLT:LEV 0.25"), q(":READ?", b"1.250000E-05\n"), w(":OUTP OFF")],
    Keithley2450: [w(":OUTP ON"), w(":SOUR:VOLT 0.25"), q(":READ?", b"1.250000E-05\n"), w(":OUTP OFF")],
    Keithley2600: [w("smua.source.output = smua.OUTPUT_ON"), w("smua.source.levelv = 0.25"),
                   q("print(smua.measure.i())", b"1.25000e-05\n"), w("smua.source.output = smua.OUTPUT_OFF")],
    KeysightB2900: [w(":OUTP1 ON"), w(":SOUR1:VOLT 0.25"), q(":MEAS:CURR? (@1)", b"+1.250000E-05\n"),
                    w(":OUTP1 OFF")],
}
#: Pulses from a base of 0 V, on a fixed current range, timed by the instrument as delay + aperture = width.
PULSE = {
    Keithley2400: [w(":SENS:CURR:RANG 0.0001"), w(":SENS:CURR:NPLC 0.025"), w(":SOUR:CLE:AUTO ON"),
                   w(":SOUR:DEL 0.0005"), w(":SOUR:VOLT:LEV 1.5"), q(":READ?", b"7.5E-05\n"), w(":SOUR:CLE:AUTO OFF"),
                   w(":SOUR:VOLT:LEV 0.0")],
    Keithley2450: [w(":SENS:CURR:RANG 0.0001"), w(":SENS:CURR:NPLC 0.025"), w(":SOUR:VOLT:DEL 0.0005"),
                   w(":SOUR:VOLT 1.5"), q(":OUTP ON;:READ?;:OUTP OFF", b"7.5E-05\n"), w(":SOUR:VOLT 0.0")],
    KeysightB2900: [w(":SOUR1:FUNC:SHAP PULS"), w(":SOUR1:VOLT:MODE FIX"), w(":SOUR1:VOLT 0.0"),
                    w(":SOUR1:VOLT:TRIG 1.5"), w(":SOUR1:PULS:DEL 0.0"), w(":SOUR1:PULS:WIDT 0.001"),
                    w(":SENS1:CURR:RANG:AUTO OFF"), w(":SENS1:CURR:RANG 0.0001"), w(":SENS1:CURR:APER 0.0005"),
                    w(":TRIG1:ACQ:DEL 0.0005"), w(":TRIG1:SOUR AINT"), w(":TRIG1:COUN 1"), q(":SYST:ERR?", SCPI_OK),
                    w(":OUTP1 ON"), w(":INIT (@1)"), q(":FETC:ARR:CURR? (@1)", b"+7.5E-05\n"), w(":OUTP1 OFF"),
                    w(":SOUR1:FUNC:SHAP DC"), w(":SOUR1:VOLT:MODE FIX"), w(":SOUR1:VOLT:TRIG 0.0"),
                    w(":SENS1:CURR:RANG:AUTO ON"), q(":SYST:ERR?", SCPI_OK)],
}
DRIVERS = list(CONFIGURE)


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_configure_source_measure_and_close(driver) -> None:
    """Configuration, a source-and-measure and close send exactly the manual's commands; close turns the output off."""
    link = Transcript(CONFIGURE[driver] + SOURCE_AND_MEASURE[driver])
    with driver(link, limits=LIMITS) as smu:
        smu.configure_voltage_source(1e-4, range_v=2.0)
        smu.enable_output()
        assert smu.source_and_measure(0.25) == 1.25e-05
    link.assert_done()
    assert link.closed


@pytest.mark.parametrize("driver", list(PULSE), ids=lambda d: d.__name__)
def test_pulse_and_read(driver) -> None:
    """One 1 ms pulse-and-read after configuration: fixed range, aperture and delay that add up to the width, the
    reading during the pulse, and the return to 0 V / output off (the B2900 also back to DC shape)."""
    link = Transcript(CONFIGURE[driver] + PULSE[driver])
    smu = driver(link, limits=LIMITS)
    smu.configure_voltage_source(1e-4, range_v=2.0)
    assert smu.pulse_and_read(1.5, 1e-3) == 7.5e-05
    link.assert_done()


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_no_output_and_no_pulse_before_compliance(driver) -> None:
    """Switching an output on, or pulsing, before any compliance was sent is refused: nothing reaches the link."""
    link = Transcript([])
    smu = driver(link, limits=LIMITS)
    with pytest.raises(LimitViolation, match="no compliance sent"):
        smu.enable_output()
    with pytest.raises(LimitViolation, match="no compliance sent"):
        smu.pulse_and_read(1.0, 1e-3)
    assert link.sent == []


def test_pulse_shorter_than_the_shortest_aperture_is_refused() -> None:
    """A 2450 cannot time 0.1 ms (its shortest reading is 0.01 PLC = 0.2 ms at 50 Hz): refused, nothing sent."""
    link = Transcript(CONFIGURE[Keithley2450])
    smu = Keithley2450(link, limits=LIMITS)
    smu.configure_voltage_source(1e-4, range_v=2.0)
    with pytest.raises(LimitViolation, match="shorter than the shortest aperture 0.0002 s"):
        smu.pulse_and_read(1.0, 1e-4)
    link.assert_done()


@pytest.mark.parametrize(("driver", "identity"), [
    (Keithley2400, "KEITHLEY INSTRUMENTS INC.,MODEL 2450,04096331,1.6.7c"),
    (Keithley2450, "KEITHLEY INSTRUMENTS INC.,MODEL 2400,1234,C30"),
    (Keithley2600, "Keysight Technologies,B2912A,MY1234,3.4"),
    (KeysightB2900, "Keithley Instruments Inc., Model 2636B, 1234, 3.2.2"),
])
def test_open_refuses_a_wrong_model(driver, identity: str) -> None:
    """``*CLS`` then ``*IDN?``: an instrument of another model than the driver's is refused."""
    link = Transcript([w("*CLS"), q("*IDN?", identity.encode() + b"\n")])
    with pytest.raises(Exception, match="refusing to drive it"):
        driver(link, limits=LIMITS).identify()
    link.assert_done()


@pytest.mark.parametrize(("driver", "identity"), [
    (Keithley2400, "KEITHLEY INSTRUMENTS INC.,MODEL 2410,1234,C30"),
    (Keithley2450, "KEITHLEY INSTRUMENTS,MODEL 2450,0,virtual"),
    (Keithley2600, "Keithley Instruments Inc., Model 2636B, 1234, 3.2.2"),
    (KeysightB2900, "Keysight Technologies,B2912A,MY1234,3.4"),
])
def test_open_accepts_its_model(driver, identity: str) -> None:
    link = Transcript([w("*CLS"), q("*IDN?", identity.encode() + b"\n")])
    assert driver(link, limits=LIMITS).identify() == identity


def test_2600b_pulse_train_is_one_batched_script() -> None:
    """A 2600B pulse train goes out as one loadandrunscript block (hardware-timed) and one printbuffer query: base
    0 V, fixed range, the measurement started by its own timer so that delay + aperture ends with the pulse."""
    smu = Keithley2600(Transcript(CONFIGURE[Keithley2600]), limits=LIMITS)
    smu.configure_voltage_source(1e-4, range_v=2.0)
    script = smu.pulse_script(np.array([1.0, -1.0, 0.5]), 1e-4, 1e-3)
    lines = ["loadandrunscript", *script, "endscript"]
    link = Transcript([w(line) for line in lines]
                      + [q("printbuffer(1, 3, smua.nvbuffer1.readings)", b"1.0e-05, -1.0e-05, 5.0e-06\n"),
                         q("print(errorqueue.next())", TSP_OK)])
    smu.transport = link
    currents = smu.pulse_train([1.0, -1.0, 0.5], 1e-4, 1e-3)
    link.assert_done()
    assert np.array_equal(currents, [1e-5, -1e-5, 5e-6])
    assert script[:5] == ["smua.source.levelv = 0", "smua.measure.autorangei = smua.AUTORANGE_OFF",
                          "smua.measure.rangei = 0.0001", "smua.measure.nplc = 0.0025", "smua.measure.delay = 0"]
    assert "smua.trigger.source.listv({1.0, -1.0, 0.5})" in script
    assert "trigger.timer[2].delay = 0.0001" in script and "trigger.timer[1].delay = 0.001" in script
    assert "trigger.timer[3].delay = 5e-05" in script
    assert "smua.trigger.measure.stimulus = trigger.timer[3].EVENT_ID" in script
    assert script[-2:] == ["smua.source.output = smua.OUTPUT_OFF", "smua.measure.autorangei = smua.AUTORANGE_ON"]


def test_b2900_pulse_train_uses_list_and_timer_trigger() -> None:
    """A B2900 pulse train is one list sweep paced by the timer trigger, fetched in one reply, then back to DC."""
    expected = [*CONFIGURE[KeysightB2900],
                w(":SOUR1:FUNC:SHAP PULS"), w(":SOUR1:VOLT 0.0"), w(":SOUR1:VOLT:MODE LIST"),
                w(":SOUR1:LIST:VOLT 1.0,-1.0"), w(":SOUR1:PULS:DEL 0.0"), w(":SOUR1:PULS:WIDT 0.0001"),
                w(":SENS1:CURR:RANG:AUTO OFF"), w(":SENS1:CURR:RANG 0.0001"), w(":SENS1:CURR:APER 5e-05"),
                w(":TRIG1:ACQ:DEL 5e-05"), w(":TRIG1:SOUR TIM"), w(":TRIG1:TIM 0.001"), w(":TRIG1:COUN 2"),
                q(":SYST:ERR?", SCPI_OK), w(":OUTP1 ON"), w(":INIT (@1)"),
                q(":FETC:ARR:CURR? (@1)", b"+1.0E-05,-1.0E-05\n"), w(":OUTP1 OFF"), w(":SOUR1:FUNC:SHAP DC"),
                w(":SOUR1:VOLT:MODE FIX"), w(":SOUR1:VOLT:TRIG 0.0"), w(":SENS1:CURR:RANG:AUTO ON"),
                q(":SYST:ERR?", SCPI_OK)]
    link = Transcript(expected)
    smu = KeysightB2900(link, limits=LIMITS)
    smu.configure_voltage_source(1e-4, range_v=2.0)
    assert np.array_equal(smu.pulse_train([1.0, -1.0], 1e-4, 1e-3), [1e-5, -1e-5])
    link.assert_done()


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda s: s.configure_voltage_source(2e-3), "max_current_a"),
        (lambda s: s.configure_voltage_source(1e-4, range_v=10.0), "max_voltage_v"),
        (lambda s: s.set_voltage(5.5), "max_voltage_v"),
        (lambda s: s.source_and_measure(-6.0), "max_voltage_v"),
        (lambda s: s.pulse_and_read(3.5, 1e-4), "max_pulse_v"),
        (lambda s: s.pulse_and_read(1.0, 5e-3), "pulse width"),
        (lambda s: s.pulse_train([1.0, 4.0], 1e-4, 1e-3), "max_pulse_v"),
    ],
)
def test_limit_violation_sends_nothing(driver, action, message: str) -> None:
    """A command beyond a limit raises LimitViolation and not one byte reaches the link."""
    link = Transcript([])
    with pytest.raises(LimitViolation, match=message):
        action(driver(link, limits=LIMITS))
    assert link.sent == []


@pytest.mark.parametrize("driver", DRIVERS, ids=lambda d: d.__name__)
def test_no_limits_no_sourcing(driver) -> None:
    """A driver built without limits refuses to source anything rather than trusting defaults."""
    link = Transcript([])
    with pytest.raises(LimitViolation, match="no limits configured"):
        driver(link).set_voltage(0.1)
    assert link.sent == []


def test_configuration_error_stops_with_the_instrument_message() -> None:
    """An error left in the queue after configuration raises, quoting the instrument's own message."""
    link = Transcript([*CONFIGURE[Keithley2450][:-1], q(":SYST:ERR?", b'-222,"Parameter data out of range"\n'),
                       q(":SYST:ERR?", SCPI_OK)])
    with pytest.raises(Exception,
                       match="k2450: instrument errors after configuration: -222 Parameter data out of range"):
        Keithley2450(link, "k2450", LIMITS).configure_voltage_source(1e-4, range_v=2.0)


def test_2450_voltmeter_current_source_and_sync_bytes() -> None:
    """Voltmeter and current-source modes (source 0 A, sense volts, voltage limit), *OPC? and a current level."""
    setup = [w("*RST"), w(":SOUR:FUNC CURR"), w(":SOUR:CURR 0.0"), w(":SOUR:CURR:VLIM 5.0"), w(':SENS:FUNC "VOLT"'),
             w(":SENS:VOLT:RANG:AUTO ON"), q(":SYST:ERR?", SCPI_OK)]
    link = Transcript([*setup, w(":OUTP ON"), q(":READ?", b"-1.250000E-01\n"), *setup,
                       w(":SOUR:CURR 0.0005"), q("*OPC?", b"1\n")])
    smu = Keithley2450(link, "k2450", LIMITS)
    smu.configure_voltmeter(5.0)
    smu.enable_output()
    assert smu.measure_voltage() == -0.125
    smu.configure_current_source(5.0)
    smu.set_current(5e-4)
    smu.sync()
    link.assert_done()
    with pytest.raises(LimitViolation, match="max_current_a"):
        smu.set_current(-2e-3)
    with pytest.raises(LimitViolation, match="max_voltage_v"):
        smu.configure_voltmeter(6.0)
