"""ngspice tests: skipped with an install hint where ngspice is missing, failed instead when it is required."""

from __future__ import annotations

import os

import numpy as np
import pytest
from aeqprop.simulators.resistive import ResistiveConfig, ResistiveNetwork
from aeqprop.simulators.spice import INSTALL_HINT, NgspiceNotFound, SpiceConfig, SpiceNetwork, find_ngspice

REQUIRE_ENV = "AEQPROP_REQUIRE_NGSPICE"


def ngspice_or_skip() -> str:
    """Path of ngspice; skip (fail when $AEQPROP_REQUIRE_NGSPICE=1, as in CI) with the install hint if absent."""
    try:
        return find_ngspice()
    except NgspiceNotFound:
        message = f"ngspice is not installed: {INSTALL_HINT}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1 requires it)", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def ngspice() -> str:
    return ngspice_or_skip()


def network_pair(seed: int = 0, **kw) -> tuple[SpiceNetwork, ResistiveNetwork]:
    """The same network (same seed, same settings) built as an ngspice system and as a resistive-solver one."""
    settings = dict(inputs=6, hidden=[8], outputs=3, input_gain=2.0, bias_init=0.1)
    settings.update(kw)
    spice_only = {k: settings.pop(k) for k in list(settings) if k in ("diode", "g_on", "diode_n", "diode_is")}
    spice = SpiceConfig(**settings, **spice_only).build(np.random.default_rng(seed))
    resistive = ResistiveConfig(**settings).build(np.random.default_rng(seed))
    return spice, resistive
