"""Fault injection for virtual instruments: each fault fires once, at the N-th command line received.

Spec syntax (``aeqprop serve --fault``): comma-separated ``KIND@N`` or ``KIND@N:SECONDS`` (delay only), e.g.
``delay@10:0.2,garble@250,error@400``. Kinds:

==========  ===============================================================================
delay       answer the N-th line SECONDS late
drop        process the N-th line but send no reply (the client times out)
garble      replace the reply to the N-th line by bytes that are not a valid answer
error       push an entry onto the instrument's error queue while processing the N-th line
disconnect  close the connection instead of answering the N-th line (a pty board drops it)
late        hold the reply to the N-th line back and send it just before the next reply (out of order)
giant       replace the reply to the N-th line by 100 kB of digits and commas
==========  ===============================================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FAULT_KINDS", "Fault", "FaultPlan"]

FaultKind = Literal["delay", "drop", "garble", "error", "disconnect", "late", "giant"]
FAULT_KINDS: tuple[str, ...] = ("delay", "drop", "garble", "error", "disconnect", "late", "giant")


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: int
    seconds: float = 0.0


@dataclass
class FaultPlan:
    """Faults keyed by the 1-based index of the command line that triggers them."""

    faults: list[Fault] = field(default_factory=list)

    @classmethod
    def parse(cls, spec: str | None) -> FaultPlan:
        """Read ``kind@N[:seconds],...``; raise ValueError naming the bad item and the allowed kinds."""
        faults = []
        for item in filter(None, (s.strip() for s in (spec or "").split(","))):
            kind, _, rest = item.partition("@")
            at, _, seconds = rest.partition(":")
            if kind not in FAULT_KINDS or not at.isdigit() or int(at) < 1:
                raise ValueError(f"fault {item!r}: expected KIND@N with KIND in {', '.join(FAULT_KINDS)} and N >= 1")
            try:
                delay = float(seconds) if seconds else 0.0
            except ValueError:
                raise ValueError(f"fault {item!r}: seconds must be a number") from None
            faults.append(Fault(kind, int(at), delay))  # type: ignore[arg-type]
        return cls(faults)

    def at(self, line: int) -> list[Fault]:
        """The faults that fire on the ``line``-th command."""
        return [f for f in self.faults if f.at == line]
