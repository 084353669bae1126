"""The one pulse-response model of a memristive device, and the versioned device file that holds its fit.

Shared by the controller (nominal pulse counting, characterisation) and by the simulators (the true devices,
the chip's twin): pure math and a schema, no system. The form is the NeuroSim one: with a normalised pulse
state p in [0, 1], nonlinearity A and ``levels`` pulses across the window,

    potentiation   u(p) = phi(p, A_pot),          phi(p, A) = (1 - exp(-p/A)) / (1 - exp(-1/A))
    depression     u(q) = 1 - phi(q, A_dep)

where u = (g - g_min) / (g_max - g_min) and one pulse advances p (or q) by ``1/levels``. A train starts from the
state the present conductance has on the curve of its direction. A = inf is the linear device.

Every function broadcasts: parameters may be scalars (one nominal device) or arrays shaped like the devices
(a per-device fit).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated, ClassVar, Literal

import numpy as np
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

#: Nonlinearity used for "linear" (A = inf): large enough that the curve is linear to machine precision.
LINEAR_A = 1e12

FloatArray = np.ndarray | float


def finite_a(a: FloatArray) -> FloatArray:
    """``a`` with inf replaced by :data:`LINEAR_A` (the curve's formula needs a finite A)."""
    if np.ndim(a) == 0:
        return LINEAR_A if math.isinf(float(a)) else float(a)
    return np.minimum(np.asarray(a, dtype=np.float64), LINEAR_A)


def curve(p: np.ndarray, a: FloatArray) -> np.ndarray:
    """Normalised pulse response phi(p) in [0, 1] for p in [0, 1]."""
    return np.expm1(-p / a) / np.expm1(-1.0 / a)


def inverse_curve(u: np.ndarray, a: FloatArray) -> np.ndarray:
    """The pulse state p with phi(p) = u (u clipped to [0, 1])."""
    u = np.clip(u, 0.0, 1.0)
    return -a * np.log1p(u * np.expm1(-1.0 / a))


def step_response(u: np.ndarray, n: np.ndarray, levels: FloatArray, a_pot: FloatArray, a_dep: FloatArray) -> np.ndarray:
    """Normalised conductance after ``n`` signed pulses (positive = SET) from normalised conductance ``u``."""
    a_p, a_d = finite_a(a_pot), finite_a(a_dep)
    u = np.clip(u, 0.0, 1.0)
    steps = np.asarray(n, dtype=np.float64) / levels
    up = curve(np.clip(inverse_curve(u, a_p) + steps, 0.0, 1.0), a_p)
    down = 1.0 - curve(np.clip(inverse_curve(1.0 - u, a_d) - steps, 0.0, 1.0), a_d)
    return np.where(steps > 0, up, np.where(steps < 0, down, u))


def pulses_between(u: np.ndarray, t: np.ndarray, levels: FloatArray, a_pot: FloatArray,
                   a_dep: FloatArray) -> np.ndarray:
    """Pulses (not rounded; positive = SET) that move a device from normalised ``u`` to normalised ``t``."""
    a_p, a_d = finite_a(a_pot), finite_a(a_dep)
    u, t = np.clip(u, 0.0, 1.0), np.clip(t, 0.0, 1.0)
    up = inverse_curve(t, a_p) - inverse_curve(u, a_p)
    down = inverse_curve(1.0 - u, a_d) - inverse_curve(1.0 - t, a_d)
    return np.where(t >= u, up, down) * levels


# --- the device file ---------------------------------------------------------------------------------------

DEVICE_FILE_VERSION: Literal[1] = 1


class DeviceFileError(ValueError):
    """A device file is unreadable or invalid; the message names the file and the field."""


class PooledFit(BaseModel):
    """The fit of the whole array: medians over working devices, and their spread."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    g_min: float = Field(ge=0, description="Low end of the conductance window (S).")
    g_max: float = Field(gt=0, description="High end of the conductance window (S).")
    levels: float = Field(gt=0, description="Pulses from g_min to g_max.")
    a_pot: float = Field(gt=0, description="Potentiation nonlinearity A (inf = linear).")
    a_dep: float = Field(gt=0, description="Depression nonlinearity A (inf = linear).")
    c2c: float = Field(ge=0, description="Cycle-to-cycle noise of one pulse, fraction of the window.")
    d2d: float = Field(ge=0, description="Device-to-device relative spread (std of log g_max).")
    read_noise: float = Field(ge=0, description="Relative noise of one conductance read.")
    stuck_min: float = Field(default=0.0, ge=0, le=1, description="Fraction of devices stuck at g_min.")
    stuck_max: float = Field(default=0.0, ge=0, le=1, description="Fraction of devices stuck at g_max.")
    drift_per_s: float | None = Field(default=None, description="Relative conductance change per second at rest.")
    spread: dict[str, float] = Field(default_factory=dict, description="Std of log of each per-device parameter.")

    @model_validator(mode="after")
    def _window(self) -> PooledFit:
        if self.g_max <= self.g_min:
            raise ValueError(f"g_max ({self.g_max}) must exceed g_min ({self.g_min})")
        return self


class DeviceGroup(BaseModel):
    """Per-device fits of one conductance matrix, as nested lists of its shape (stuck devices: pooled values)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    shape: list[int]
    g_min: list | float
    g_max: list | float
    levels: list | float
    a_pot: list | float
    a_dep: list | float
    c2c: list | float
    read_noise: list | float
    stuck: list | int = Field(description="0 = working, -1 = stuck at g_min, +1 = stuck at g_max.")

    FIELDS: ClassVar[tuple[str, ...]] = ("g_min", "g_max", "levels", "a_pot", "a_dep", "c2c", "read_noise", "stuck")

    @model_validator(mode="after")
    def _shapes(self) -> DeviceGroup:
        for name in self.FIELDS:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.shape not in ((), tuple(self.shape)):
                raise ValueError(f"{name}: expected shape {tuple(self.shape)}, got {value.shape}")
        return self

    def array(self, name: str) -> np.ndarray:
        """Field ``name`` as an array of ``shape`` (a scalar is broadcast)."""
        return np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64), tuple(self.shape)).copy()


class StuckDevice(BaseModel):
    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    param: str
    index: list[int]
    at: Literal["g_min", "g_max"]
    g: float


class DeviceFile(BaseModel):
    """What a characterisation measured: pooled fit, per-device fits, stuck devices, and how it was measured."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="constants")

    version: Literal[1] = DEVICE_FILE_VERSION
    system: str = Field(default="", description="The measured system's description.")
    measured: dict[str, float | int | str] = Field(default_factory=dict, description="Settings and costs.")
    pooled: PooledFit
    devices: dict[str, DeviceGroup] = Field(default_factory=dict)
    stuck: list[StuckDevice] = Field(default_factory=list)

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.model_dump_json(indent=1))


def load_device_file(path: str | Path) -> DeviceFile:
    """Read and validate a device file; raises :class:`DeviceFileError` with one line naming file and field."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise DeviceFileError(f"{path}: no such device file") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DeviceFileError(f"{path}: not a JSON device file: {exc}") from None
    try:
        return DeviceFile.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"])
        raise DeviceFileError(f"{path}: {loc}: {first['msg']}") from None


__all__ = [
    "DEVICE_FILE_VERSION", "LINEAR_A", "DeviceFile", "DeviceFileError", "DeviceGroup", "PooledFit",
    "StuckDevice", "curve", "finite_a", "inverse_curve", "load_device_file", "pulses_between", "step_response",
]


def _readable_device_file(path: str | None) -> str | None:
    """A protocol field naming a device file: it must load (a DeviceFileError is a ValueError: one line)."""
    if path is not None:
        load_device_file(path)
    return path


#: A protocol field that names a device file; validated by loading it, so a bad file fails ``aeqprop validate``.
DeviceFilePath = Annotated[str | None, AfterValidator(_readable_device_file)]
