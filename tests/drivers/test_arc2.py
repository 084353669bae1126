"""ArC TWO is an optional extra: without pyarc2 the driver says how to install it, and nothing else breaks."""

from __future__ import annotations

import importlib.util

import pytest
from aeqprop.drivers.arc2 import ArcTwo, MissingExtra
from aeqprop.drivers.base import Limits


@pytest.mark.skipif(importlib.util.find_spec("pyarc2") is not None, reason="pyarc2 is installed")
def test_missing_pyarc2_is_a_clear_error() -> None:
    with pytest.raises(MissingExtra, match=r"pip install 'aeqprop\[arc2\]'"):
        ArcTwo("firmware.bin", Limits(max_voltage_v=1.0, max_current_a=1e-3))
