"""Instrument drivers and hardware rigs that implement the contract of :mod:`aeqprop.system`.

pyvisa and pyserial are imported when a link is opened, not here; ``pyarc2`` (ArC TWO) only when asked for.
"""

from .base import Instrument, Limits, fmt, fmt_list
from .crossbar import CrossbarFrontEnd
from .rig import CrossbarRig, RigConfig
from .transcript import Transcript, TranscriptMismatch
from .transport import SerialTransport, Transport, TransportError, VisaTransport, open_transport

__all__ = [
    "CrossbarFrontEnd",
    "CrossbarRig",
    "Instrument",
    "Limits",
    "RigConfig",
    "SerialTransport",
    "Transcript",
    "TranscriptMismatch",
    "Transport",
    "TransportError",
    "VisaTransport",
    "fmt",
    "fmt_list",
    "open_transport",
]
