"""Instrument drivers and hardware rigs that implement the contract of :mod:`aeqprop.system`.

pyvisa and pyserial are imported when a link is opened, not here; ``pyarc2`` (ArC TWO) only when asked for.
"""

from .base import Instrument, Limits, fmt, fmt_list
from .crossbar import CrossbarFrontEnd
from .floating import FloatingFrontEnd  # noqa: F401 - registration (floating front-end)
from .floating_rig import FloatingRig, FloatingRigConfig  # noqa: F401 - registration (floating front-end)
from .keithley707b import Keithley707B
from .keithley2400 import Keithley2400
from .keithley2450 import Keithley2450
from .keithley2600 import Keithley2600
from .keysight_b2900 import KeysightB2900
from .rig import CrossbarRig, RigConfig
from .smu import SourceMeter
from .smu_rig import SmuRig, SmuRigConfig
from .transcript import Transcript, TranscriptMismatch
from .transport import SerialTransport, Transport, TransportError, VisaTransport, open_transport

__all__ = [
    "CrossbarFrontEnd",
    "CrossbarRig",
    "Instrument",
    "Keithley707B",
    "Keithley2400",
    "Keithley2450",
    "Keithley2600",
    "KeysightB2900",
    "Limits",
    "RigConfig",
    "SerialTransport",
    "SmuRig",
    "SmuRigConfig",
    "SourceMeter",
    "Transcript",
    "TranscriptMismatch",
    "Transport",
    "TransportError",
    "VisaTransport",
    "fmt",
    "fmt_list",
    "open_transport",
]
