"""A hardware rig behind the contract: a crossbar front-end board, its wiring map, limits and settling rules.

Declared in a protocol file (``[system] kind = "rig"``). The controller sees a :class:`PhysicalSystem` with
``max_batch = 1``; relaxing means waiting ``settle_time_s``, then reading the board's settle status until it
reports settled (``NotSettled`` after ``settle_timeout_s``), optionally confirmed by repeated output reads
that agree within ``verify_tol_v``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import ClassVar, Literal

import numpy as np
from pydantic import ConfigDict, Field, model_validator

from aeqprop.settings import Seconds, Timeout
from aeqprop.system import (
    CapabilityError,
    InstrumentFault,
    LimitViolation,
    NotSettled,
    ParamSpec,
    RelaxReport,
    SystemSpec,
    check_shape,
    real_beta,
)

from .base import Limits
from .board_settings import BoardSettings
from .crossbar import CrossbarFrontEnd

__all__ = ["CrossbarRig", "RigConfig"]

log = logging.getLogger("aeqprop.drivers")


class RigConfig(BoardSettings):
    """A crossbar front-end board on a VISA resource (TCP socket) or a serial port, with its safety limits."""

    model_config = ConfigDict(extra="forbid")
    description: ClassVar[str] = "a crossbar front-end board over VISA (TCP) or a serial port, with safety limits"

    kind: Literal["rig"] = "rig"
    data_format: Literal["binary", "hex", "ascii"] = Field(
        default="binary", description="Lists as IEEE-488.2 binary blocks of float64 (exact, compact), exact hex "
        "float64 text, or decimal text (readable in logs)."
    )
    readback_every: int = Field(default=1, ge=0, description="Read the parameters back (PAR?, same round trip) "
                                "after every N-th programming step and compare; 0: only at checkpoints.")
    program_precision: float = Field(default=0.0, ge=0, description="The board's stated absolute precision of a "
                                     "programmed parameter (parameter units): the read-back tolerance.")
    program_rides_along: bool = Field(default=True, description="Send each programming step (and its read-back) "
                                      "in front of the next round trip: 3 round trips per centered-EP sample, not 4.")
    input_gain_v: float = Field(gt=0, description="Volts per unit of input level; must match the board's INP:GAIN?.")
    input_range: float = Field(default=1.0, gt=0, description="Largest |input| the data presents (digits: 1).")
    input_channels: list[int] | None = Field(
        default=None, description="Board input channel of each input (default 0..inputs-1)."
    )
    output_channels: list[int] | None = Field(default=None, description="Board output channel of each output.")
    settle_time_s: Seconds = Field(default=0.0, description="Wait before the first settle-status read.")
    settle_timeout_s: Timeout = Field(default=10.0, description="NotSettled after this long.")
    settle_poll_s: Timeout = Field(default=1e-3, description="Interval between settle-status reads.")
    verify_reads: int = Field(
        default=0, ge=0, le=2**16, description="Extra output reads that must agree before settled."
    )
    verify_tol_v: float = Field(default=1e-6, gt=0, description="Agreement required of those reads (V).")
    prefetch: bool = Field(
        default=True,
        description="Read outputs (free phase) or local terms (nudged) in the settle round trip: 4 round trips "
        "per centered-EP sample instead of 7.",
    )
    pulse_amplitude_v: float = Field(description="Programming pulse amplitude the board uses (V).")
    pulse_width_s: Timeout = Field(description="Programming pulse width (s).")
    limits: Limits = Field(description="Safety limits: checked here, at validation, and before every command.")

    @model_validator(mode="after")
    def _within_limits(self) -> RigConfig:
        try:
            self.limits.check_voltage(self.input_gain_v * self.input_range, "rig", "input full scale")
            self.limits.check_pulse(self.pulse_amplitude_v, self.pulse_width_s, "rig")
        except LimitViolation as exc:
            raise ValueError(str(exc).replace("; nothing was sent", "")) from None
        for name, chans, n in (("input_channels", self.input_channels, self.inputs),
                               ("output_channels", self.output_channels, self.outputs)):
            if chans is not None and (len(chans) != n or len(set(chans)) != n or min(chans) < 0):
                raise ValueError(f"{name} must list {n} distinct non-negative board channels")
        return self

    def capabilities(self) -> frozenset[str]:
        return CrossbarRig.CAPABILITIES

    def build(self, rng: np.random.Generator) -> CrossbarRig:
        """Connect, configure and check the board (``rng`` is unused: the parameters live on the device)."""
        link = self.open_link("rig")
        board = CrossbarFrontEnd(link, "crossbar", self.limits, self.data_format, self.readback_every,
                                 self.program_precision, self.program_rides_along)
        try:
            return CrossbarRig(board, self)
        except BaseException:
            if not board.replies:  # the board never answered: nothing was configured or switched on
                link.close()
                raise
            try:
                board.close()
            except InstrumentFault as exc:
                log.error("could not switch the crossbar outputs off: %s", exc)
            raise


class CrossbarRig:
    """The contract over a :class:`CrossbarFrontEnd` (capabilities ``local`` and ``program``; batch 1)."""

    CAPABILITIES = frozenset({"local", "program"})

    def __init__(self, board: CrossbarFrontEnd, config: RigConfig) -> None:
        self.board = board
        self.config = config
        info = board.configure(config.pulse_amplitude_v, config.pulse_width_s)
        if info.input_gain_v != config.input_gain_v:
            raise InstrumentFault(f"crossbar: board input gain is {info.input_gain_v!r} V but the protocol "
                                  f"says input_gain_v = {config.input_gain_v!r}")
        missing = self.CAPABILITIES - info.capabilities
        if missing:
            raise CapabilityError(f"crossbar: board lacks capabilities {sorted(missing)}")
        self._in = np.arange(config.inputs) if config.input_channels is None else np.array(config.input_channels)
        self._out = np.arange(config.outputs) if config.output_channels is None else np.array(config.output_channels)
        if self._in.max() >= info.n_inputs or self._out.max() >= info.n_outputs:
            raise InstrumentFault(f"crossbar: channel map exceeds the board's {info.n_inputs} inputs / "
                                  f"{info.n_outputs} outputs")
        self._entries = info.params
        starts = np.cumsum([0] + [p.size for p in info.params])
        #: (name, start, stop, shape) of each parameter group in the board's flat lists, computed once.
        self._layout = [(p.name, int(a), int(b), p.shape) for p, a, b in zip(info.params, starts[:-1], starts[1:])]
        self._beta = 0.0
        self._closed = False
        self.spec = SystemSpec(
            n_inputs=config.inputs,
            n_outputs=config.outputs,
            params={p.name: ParamSpec(p.shape, (_bound(p.low), _bound(p.high)), p.unit, p.layer, p.role)  # type: ignore[arg-type]
                    for p in info.params},
            capabilities=self.CAPABILITIES,
            max_batch=1,
            description=f"rig: {info.identity} on {config.resource}",
        )
        board.output_on()

    # --- all systems -------------------------------------------------------------------------------------
    def clamp(self, x: np.ndarray) -> None:
        x = np.asarray(x, dtype=np.float64)
        check_shape("clamp", x, (1, self.spec.n_inputs))
        levels = np.zeros(self.board.info.n_inputs)
        levels[self._in] = x[0]
        self.board.set_levels(levels)

    def nudge(self, beta: float, target: np.ndarray | None = None) -> None:
        self._beta = beta = real_beta(beta, "crossbar rig")
        if target is None:
            self.board.set_nudge(beta, None)
            return
        target = np.asarray(target, dtype=np.float64)
        check_shape("nudge target", target, (1, self.spec.n_outputs))
        board_target = np.zeros(self.board.info.n_outputs)
        board_target[self._out] = target[0]
        self.board.set_nudge(beta, board_target)

    def relax(self) -> RelaxReport:
        cfg = self.config
        if cfg.settle_time_s:
            time.sleep(cfg.settle_time_s)
        start = time.monotonic()
        prefetch = None
        if cfg.prefetch and not cfg.verify_reads:
            prefetch = "MEAS:OUT? 1" if self._beta == 0.0 else "MEAS:LOC? 1"
        first = self.board.settle(prefetch)
        count, residual = self.board.wait_settled(first, cfg.settle_timeout_s, cfg.settle_poll_s, start)
        if cfg.verify_reads:
            self._verify_settled(start)
        return RelaxReport(sweeps=count, residual=residual, settled=True)

    def _verify_settled(self, start: float) -> None:
        cfg = self.config
        previous = self.board.read_outputs()
        agreed = 0
        while agreed < cfg.verify_reads:
            if time.monotonic() - start > cfg.settle_timeout_s:
                raise NotSettled(f"crossbar: outputs still drifting after {cfg.settle_timeout_s} s")
            time.sleep(cfg.settle_poll_s)
            current = self.board.read_outputs()
            agreed = agreed + 1 if np.max(np.abs(current - previous)) <= cfg.verify_tol_v else 0
            previous = current

    def read_outputs(self, reads: int = 1) -> np.ndarray:
        return self.board.read_outputs(reads)[self._out][None, :]

    def snapshot(self) -> dict[str, np.ndarray]:
        return {f"param.{k}": v for k, v in self.read_params().items()}

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        self.board.program_values(np.concatenate([np.ravel(snapshot[f"param.{p.name}"]) for p in self._entries]))

    def cost(self) -> dict[str, float]:
        """Measured instrument time (commands sent and replies awaited); a rig cannot tell energy."""
        return {"time_s": self.board.busy_s}

    def close(self) -> None:
        """Switch the board's outputs off, confirm it, drain its errors and release the link (once).

        Raises InstrumentFault when the outputs cannot be confirmed off or errors were queued: the run that
        ends here must not count as completed. A second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self.board.close()

    # --- local / program -----------------------------------------------------------------------------------
    def read_local(self, reads: int = 1) -> dict[str, np.ndarray]:
        return self._split(self.board.read_local(reads))

    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        flat = []
        for p in self._entries:
            step = np.zeros(p.shape) if p.name not in delta else np.asarray(delta[p.name], dtype=np.float64)
            check_shape(f"program {p.name}", step, p.shape)
            flat.append(step.ravel())
        unknown = set(delta) - {p.name for p in self._entries}
        if unknown:
            raise KeyError(f"program: unknown parameters {sorted(unknown)}")
        self.board.program_increments(np.concatenate(flat))

    def read_params(self) -> dict[str, np.ndarray]:
        return self._split(self.board.read_params())

    def set_controls(self, u: Mapping[str, np.ndarray]) -> None:
        raise CapabilityError("the crossbar rig has no homeostatic control knobs")

    def _split(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[start:stop].reshape(shape) for name, start, stop, shape in self._layout}


def _bound(value: float) -> float | None:
    return None if not np.isfinite(value) else value
