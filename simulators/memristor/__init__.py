"""Memristive devices (pulse response, variation, faults, noisy reads) and the crossbar network built on them."""

from .config import CrossbarConfig, DeviceConfig
from .crossbar import CrossbarNetwork
from .devices import DeviceArray, DeviceModel

__all__ = ["CrossbarConfig", "CrossbarNetwork", "DeviceArray", "DeviceConfig", "DeviceModel"]
