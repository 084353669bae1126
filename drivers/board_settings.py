"""Settings every front-end board shares: sizes, the link (VISA resource or serial port) and batch 1.

The crossbar rig and the floating rig subclass :class:`BoardSettings` and keep only their own fields, checks
and ``build``; :meth:`BoardSettings.open_link` opens the link the same way for both.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from aeqprop.settings import SystemSettings, Timeout, Units
from aeqprop.system import InstrumentFault

from .transport import Transport, TransportError, open_transport


class BoardSettings(SystemSettings):
    """A front-end board on a VISA resource (TCP socket) or a serial port; hardware takes one sample at a time."""

    inputs: Units = Field(description="Inputs the controller drives (data features).")
    outputs: Units = Field(description="Outputs the controller reads (classes).")
    resource: str = Field(description="VISA resource (e.g. TCPIP0::127.0.0.1::5025::SOCKET) or serial port path.")
    transport: Literal["visa", "serial"] = Field(default="visa", description="visa (pyvisa) or serial (pyserial).")
    visa_backend: str = Field(default="@py", description="pyvisa backend; @py is pyvisa-py.")
    baudrate: int = Field(default=115200, gt=0, le=2**32, description="Serial only.")
    timeout_s: Timeout = Field(default=5.0, description="Bound on every read and write.")

    def feature_counts(self) -> tuple[int, int]:
        return self.inputs, self.outputs

    def max_batch(self) -> int:
        """Hardware takes one sample at a time (checked against run.batch_size at validation)."""
        return 1

    def open_link(self, who: str) -> Transport:
        """The board's link, opened with this section's settings; a failure is an :class:`InstrumentFault`."""
        try:
            return open_transport(self.resource, self.transport, timeout_s=self.timeout_s,
                                  baudrate=self.baudrate, backend=self.visa_backend)
        except TransportError as exc:
            raise InstrumentFault(f"{who}: {exc}") from None


__all__ = ["BoardSettings"]
