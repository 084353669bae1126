"""Virtual instruments: simulated systems served over real transports (TCP socket, pty), with fault injection."""

from .bench import BenchWiring, SmuBench
from .crossbar import CrossbarBoard, Reply
from .faults import FAULT_KINDS, Fault, FaultPlan
from .instruments import Virtual707B, Virtual2450
from .servers import PtyServer, TcpServer

__all__ = [
    "FAULT_KINDS", "BenchWiring", "CrossbarBoard", "Fault", "FaultPlan", "PtyServer", "Reply", "SmuBench", "TcpServer",
    "Virtual707B", "Virtual2450",
]
