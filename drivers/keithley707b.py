"""Keithley 707B six-slot switching matrix (TSP): routes SMUs to crossbar rows and columns.

Commands from the *Model 707B Reference Manual* (707B-901-01), "TSP command reference":
``channel.close("1A01,1B02")``, ``channel.exclusiveclose(...)`` (close these, open all others),
``channel.open("allslots")``, ``print(channel.getclose("allslots"))`` (``nil`` or ``1A01;1B02``),
``reset()``. Channel names are slot (1–6), row (A–H), column (01–12); each is validated before sending.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from .tsp import TspInstrument, tsp_string

__all__ = ["CHANNEL", "RANGE", "Keithley707B", "valid_channel"]

#: A 707B crosspoint: slot 1-6, row A-H, column 01-12.
CHANNEL = re.compile(r"^[1-6][A-H](0[1-9]|1[0-2])$")
#: A range of crosspoints, ``1A01:1A05`` (the manual's channel-list form: first and last, inclusive).
RANGE = re.compile(r"^([1-6][A-H](?:0[1-9]|1[0-2])):([1-6][A-H](?:0[1-9]|1[0-2]))$")


def valid_channel(item: str) -> bool:
    """A crosspoint or a range of crosspoints whose last is not before its first."""
    if CHANNEL.match(item):
        return True
    match = RANGE.match(item)
    return bool(match) and match.group(1) <= match.group(2)


class Keithley707B(TspInstrument):
    """Switch matrix: close/open crosspoints; ``close()`` of the driver opens every relay."""

    model_marker = r"707B"

    def _channels(self, channels: Sequence[str]) -> str:
        if not channels:
            raise ValueError(f"{self.name}: no channels given")
        bad = [c for c in channels if not valid_channel(c)]
        if bad:
            raise ValueError(f"{self.name}: invalid crosspoints {bad}; expected slot 1-6, row A-H, column 01-12, "
                             f"or a range such as 1A01:1A05")
        return tsp_string(",".join(channels))

    def reset(self) -> None:
        """Reset the matrix (all relays open) and drain the error queue."""
        self.write_all(["reset()"], "reset")

    def close_channels(self, channels: Sequence[str]) -> None:
        """Close the crosspoints ``channels`` (others keep their state)."""
        self.write(f"channel.close({self._channels(channels)})")
        self.check_errors("channel.close")

    def route(self, channels: Sequence[str]) -> None:
        """Close exactly ``channels`` and open every other crosspoint."""
        self.write(f"channel.exclusiveclose({self._channels(channels)})")
        self.check_errors("channel.exclusiveclose")

    def open_channels(self, channels: Sequence[str]) -> None:
        self.write(f"channel.open({self._channels(channels)})")
        self.check_errors("channel.open")

    def open_all(self) -> None:
        """Open every crosspoint and drain the error queue."""
        self.write('channel.open("allslots")')
        self.check_errors("channel.open")

    def closed(self) -> list[str]:
        """Crosspoints now closed."""
        reply = self.query('print(channel.getclose("allslots"))')
        return [] if reply.strip() == "nil" else [c for c in reply.strip().split(";") if c]

    def output_off(self) -> None:
        """Open every relay: nothing stays connected."""
        self.write('channel.open("allslots")')
