"""A floating-parameter board behind the contract: capability ``homeostatic``, batch 1 (``kind = "floating-rig"``).

The controller sets knobs and reads parameters back; the board relaxes by itself. Agnostic EP (``aeqprop``)
is the rule that trains it. Limits: input and knob voltages against ``max_voltage_v``, knob values against
``knob_window``, both before sending; faults (garbled reply, error queue, timeout) raise InstrumentFault, so a
run stops with its checkpoint and ``--resume`` continues (knobs and coupling are restored from it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from aeqprop.settings import Timeout
from aeqprop.system import (
    CapabilityError,
    InstrumentFault,
    LimitViolation,
    ParamSpec,
    RelaxReport,
    SystemSpec,
    check_shape,
    real_beta,
)

from .base import Limits
from .board_settings import BoardSettings
from .floating import FloatingFrontEnd

__all__ = ["FloatingRig", "FloatingRigConfig"]

log = logging.getLogger("aeqprop.drivers")


class FloatingRigConfig(BoardSettings):
    """A floating-parameter front-end board on a VISA resource (TCP socket) or a serial port, with its limits."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a floating-parameter board (knobs by DACs, parameters by ADCs) for agnostic EP"

    kind: Literal["floating-rig"] = "floating-rig"
    data_format: Literal["hex", "ascii"] = Field(default="hex", description="Lists as exact hex float64 or decimal "
                                                 "text.")
    input_gain_v: float = Field(gt=0, description="Volts per unit of input level; must match the board's INP:GAIN?.")
    input_range: float = Field(default=1.0, gt=0, description="Largest |input| the data presents (digits: 1).")
    knob_window: tuple[float, float] | None = Field(
        default=None, strict=False,
        description="[low, high] every knob value must stay in (parameter units); none = only the voltage limit.",
    )
    settle_time_s: float = Field(default=0.0, ge=0, le=3600, description="Wait before the first settle-status read.")
    settle_timeout_s: Timeout = Field(default=10.0, description="NotSettled after this long.")
    settle_poll_s: float = Field(default=1e-3, gt=0, le=60, description="Interval between settle-status reads.")
    limits: Limits = Field(description="Safety limits: checked here, at validation, and before every command.")

    @model_validator(mode="after")
    def _within_limits(self) -> FloatingRigConfig:
        try:
            self.limits.check_voltage(self.input_gain_v * self.input_range, "floating-rig", "input full scale")
        except LimitViolation as exc:
            raise ValueError(str(exc).replace("; nothing was sent", "")) from None
        if self.knob_window is not None and not self.knob_window[0] < self.knob_window[1]:
            raise ValueError(f"knob_window must be [low, high] with low < high, got {list(self.knob_window)}")
        return self

    def capabilities(self) -> frozenset[str]:
        return FloatingRig.CAPABILITIES

    def settable_coupling(self) -> bool:
        return True  # CTRL:EPS sets the board's coupling

    def build(self, rng: np.random.Generator) -> FloatingRig:
        """Connect, configure and check the board (``rng`` is unused: the parameters live on the device)."""
        link = self.open_link("floating-rig")
        board = FloatingFrontEnd(link, "floating", self.limits, self.data_format)
        try:
            return FloatingRig(board, self)
        except BaseException:
            if not board.replies:
                link.close()
                raise
            try:
                board.close()
            except InstrumentFault as exc:
                log.error("could not switch the floating board's outputs off: %s", exc)
            raise


class FloatingRig:
    """The contract over a :class:`FloatingFrontEnd` (capability ``homeostatic``; batch 1)."""

    CAPABILITIES = frozenset({"homeostatic"})

    def __init__(self, board: FloatingFrontEnd, config: FloatingRigConfig) -> None:
        self.board = board
        self.config = config
        info = board.configure_floating()
        if info.input_gain_v != config.input_gain_v:
            raise InstrumentFault(f"floating: board input gain is {info.input_gain_v!r} V but the protocol "
                                  f"says input_gain_v = {config.input_gain_v!r}")
        if "homeostatic" not in info.capabilities:
            raise CapabilityError(f"floating: board lacks capability 'homeostatic' "
                                  f"(offers {sorted(info.capabilities)})")
        if info.n_inputs != config.inputs or info.n_outputs != config.outputs:
            raise InstrumentFault(f"floating: board has {info.n_inputs} inputs / {info.n_outputs} outputs, the "
                                  f"protocol says {config.inputs} / {config.outputs}")
        self._entries = info.params
        starts = np.cumsum([0] + [p.size for p in info.params])
        self._layout = [(p.name, int(a), int(b), p.shape) for p, a, b in zip(info.params, starts[:-1], starts[1:])]
        self._knobs: np.ndarray | None = None
        self._eps: np.ndarray | None = None
        self.spec = SystemSpec(
            n_inputs=config.inputs,
            n_outputs=config.outputs,
            params={p.name: ParamSpec(p.shape, (_bound(p.low), _bound(p.high)), p.unit, p.layer, p.role)  # type: ignore[arg-type]
                    for p in info.params},
            capabilities=self.CAPABILITIES,
            max_batch=1,
            description=f"floating-rig: {info.identity} on {config.resource}",
        )
        self._closed = False
        board.output_on()

    # --- all systems -------------------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        check_shape("clamp", x, (1, self.spec.n_inputs))
        self.board.set_levels(x[0])

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        beta = real_beta(beta, "floating-rig")
        if target is None:
            self.board.set_nudge(beta, None)
            return
        target = np.asarray(target, dtype=np.float64)
        check_shape("nudge target", target, (1, self.spec.n_outputs))
        self.board.set_nudge(beta, target[0])

    def relax(self) -> RelaxReport:
        cfg = self.config
        if cfg.settle_time_s:
            time.sleep(cfg.settle_time_s)
        start = time.monotonic()
        first = self.board.settle()
        count, residual = self.board.wait_settled(first, cfg.settle_timeout_s, cfg.settle_poll_s, start)
        return RelaxReport(sweeps=count, residual=residual, settled=True)

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        return self.board.read_outputs(reads)[None, :]

    def snapshot(self) -> dict[str, np.ndarray]:
        snap = {f"param.{k}": v for k, v in self.read_params().items()}
        knobs = self.board.read_knobs() if self._knobs is None else self._knobs
        snap.update({f"control.{k}": v for k, v in self._split(knobs).items()})
        if self._eps is not None:
            snap.update({f"eps.{p.name}": np.array(e) for p, e in zip(self._entries, self._eps)})
        return snap

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        """Set the knobs (and ε, when the checkpoint has it) of the checkpoint; the parameters follow them."""
        if all(f"eps.{p.name}" in snapshot for p in self._entries):
            self.set_coupling({p.name: float(snapshot[f"eps.{p.name}"]) for p in self._entries})
        self.set_controls({p.name: snapshot[f"control.{p.name}"] for p in self._entries})

    def close(self) -> None:
        """Switch the board's outputs off, confirm it, drain its errors and release the link (once).

        Raises InstrumentFault when the outputs cannot be confirmed off or errors were queued: the run that
        ends here must not count as completed. A second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self.board.close()

    # --- homeostatic ---------------------------------------------------------------------------------------
    def read_params(self, reads: int = 1) -> dict[str, np.ndarray]:
        return self._split(self.board.read_params(reads))

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        unknown = set(u) - {p.name for p in self._entries}
        if unknown:
            raise KeyError(f"set_controls: unknown parameters {sorted(unknown)}")
        current = self._knobs if self._knobs is not None else self.board.read_knobs()
        parts = self._split(current.copy())
        for name, value in u.items():
            value = np.asarray(value, dtype=np.float64)
            check_shape(f"set_controls {name}", value, parts[name].shape)
            parts[name] = value
        flat = np.concatenate([np.ravel(parts[p.name]) for p in self._entries])
        self.board.set_knobs(flat, self.config.knob_window)
        self._knobs = flat

    def set_coupling(self, eps: Mapping[str, float]) -> None:
        values = self._eps.copy() if self._eps is not None else np.full(len(self._entries), np.nan)
        for i, p in enumerate(self._entries):
            if p.name in eps:
                values[i] = float(eps[p.name])
        if np.any(np.isnan(values)):
            missing = [p.name for p, v in zip(self._entries, values) if np.isnan(v)]
            raise ValueError(f"set_coupling: no eps for {missing}")
        self.board.set_coupling(values)
        self._eps = values

    # --- not offered -----------------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        raise CapabilityError("the floating rig cannot measure local terms (no 'local' capability)")

    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the floating rig's parameters are held by knobs, not programmed")

    def _split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[start:stop].reshape(shape) for name, start, stop, shape in self._layout}


def _bound(value: float) -> float | None:
    return None if not np.isfinite(value) else value
