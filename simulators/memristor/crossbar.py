"""A resistive network whose conductances are memristive devices (capabilities local, program, pulse).

The physics is the foundation's layered resistive network (same energy, same exact solver); what changes is
how parameters are written and how anything is read:

* conductances ``g1..gL`` live in :class:`~.devices.DeviceArray` s and change only through pulses:
  ``apply_pulses`` fires the counts it is given, ``program(delta)`` converts a requested increment into pulses
  with the *nominal* device model (what on-chip programming firmware would do, open loop);
* bias currents ``b1..bL`` are ideal programmable current sources (programmed exactly);
* every read is noisy: node voltages (outputs and the voltage drops behind local measurements) carry Gaussian
  noise of ``read_noise_v`` volts per read, averaged over ``reads`` repeated reads; every conductance read
  carries the devices' relative read noise.

Each of the ``reads`` repeated reads draws its own noise and the reads are averaged (not one Gaussian of
``sigma / sqrt(reads)``: that would make a run with N reads replay, bit for bit, the run with N = 1 at sigma/√N).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import numpy as np
from aeqprop.simulators.resistive import ResistiveNetwork, Topology

from aeqprop.devicemodel import pulses_between
from aeqprop.system import RelaxReport, SystemSpec

from .devices import DeviceArray, DeviceModel

_RNG_KEY = "crossbar.rng"


class CrossbarNetwork(ResistiveNetwork):
    """The resistive network with device-backed conductances and noisy reads.

    It uses only the resistive network's public methods and its subclass interface (``_measure``,
    ``_node_reads``, ``_replace_params``, ``dtype``), never its private state.
    """

    CAPABILITIES = frozenset({"local", "program", "pulse"})
    NAME = "memristor crossbar"

    def __init__(
        self,
        topology: Topology,
        params: Mapping[str, np.ndarray],
        device: DeviceModel,
        rng: np.random.Generator,
        *,
        read_noise_v: float = 0.0,
        tol_v: float = 1e-5,
        max_sweeps: int = 1000,
        dtype: str = "float64",
        measured: Mapping[str, Mapping[str, np.ndarray]] | None = None,
        settle_s: float = 5e-6,
    ) -> None:
        """``measured``: per-device fits of named conductance matrices (a chip's twin); others are drawn.
        ``settle_s``: the modelled physical time of one relaxation (time and energy reports)."""
        super().__init__(topology, params, g_min=0.0, g_max=None, tol_v=tol_v, max_sweeps=max_sweeps,
                         dtype=dtype, capabilities=self.CAPABILITIES)
        if read_noise_v < 0:
            raise ValueError(f"read_noise_v must be >= 0, got {read_noise_v}")
        self.device = device
        self.read_noise_v = float(read_noise_v)
        self.settle_s = float(settle_s)
        self._relax_energy_j = 0.0
        self._relax_time_s = 0.0
        self._rng = rng
        self._devices: dict[str, DeviceArray] = {}
        initial = super().read_params()
        for k in range(1, topology.depth + 1):
            name = f"g{k}"
            array = DeviceArray(device, initial[name].shape, rng, (measured or {}).get(name))
            array.initialise(initial[name])
            self._devices[name] = array
        self._sync()
        specs = dict(self.spec.params)
        for name in self._devices:
            old = specs[name]
            specs[name] = type(old)(old.shape, (device.g_min, device.g_max), old.unit, old.layer, old.role)
        self.spec = SystemSpec(
            n_inputs=self.spec.n_inputs, n_outputs=self.spec.n_outputs, params=specs,
            capabilities=self.CAPABILITIES, max_batch=None,
            description=f"memristor crossbar {'-'.join(map(str, topology.sizes))}, {device.levels} levels, "
            f"A=({device.a_pot:g}, {device.a_dep:g}), read noise {self.read_noise_v:g} V",
        )

    # --- physics and its cost ---------------------------------------------------------------------------
    def relax(self) -> RelaxReport:
        """Settle, then book the relaxation's modelled time and the energy the conductances dissipate in it.

        Power at the equilibrium reached, P = Σ g (V_i − V_j)² over every device and sample (the circuit
        settles exponentially, so its power while settling is within a factor of order one of this), over the
        stated settle time; bias sources and the nudge are not counted.
        """
        report = super().relax()
        self._relax_energy_j += self._dissipated_power() * self.settle_s
        self._relax_time_s += self.settle_s
        return report

    def cost(self) -> dict[str, float]:
        """Cumulative modelled time and energy: relaxations (settle time × power) and programming pulses."""
        pulse_j = sum(a.pulse_energy_j for a in self._devices.values())
        pulse_s = sum(a.pulse_time_s for a in self._devices.values())
        return {
            "time_s": self._relax_time_s + pulse_s, "energy_j": self._relax_energy_j + pulse_j,
            "relax_time_s": self._relax_time_s, "program_time_s": pulse_s,
            "relax_energy_j": self._relax_energy_j, "program_energy_j": pulse_j,
        }

    # --- reads ----------------------------------------------------------------------------------------
    def _noisy(self, values: np.ndarray, reads: int) -> np.ndarray:
        if reads < 1:
            raise ValueError(f"reads must be >= 1, got {reads}")
        if self.read_noise_v == 0:
            return values.copy()
        noise = self._rng.standard_normal((reads, *values.shape)).mean(axis=0)
        return values + (self.read_noise_v * noise).astype(values.dtype)

    def _measure(self, values: np.ndarray, reads: int) -> np.ndarray:
        return self._noisy(values, reads)

    def _node_reads(self, layers: list[np.ndarray], reads: int) -> list[np.ndarray]:
        """Local measurements come from noisy node-voltage reads (inputs are sources: known exactly)."""
        return [self._noisy(layer, reads) for layer in layers]

    def read_params(self) -> dict[str, np.ndarray]:
        out = super().read_params()
        for name, array in self._devices.items():
            out[name] = array.read(self._rng).astype(self.dtype)
        return out

    # --- writes ---------------------------------------------------------------------------------------
    def apply_pulses(self, counts: Mapping[str, np.ndarray]) -> None:
        """Fire signed pulse counts (positive = SET) at the devices of the named conductance matrices."""
        for name, n in counts.items():
            if name not in self._devices:
                raise KeyError(f"apply_pulses: {name!r} is not a device array; pulsed: {sorted(self._devices)}")
            self._devices[name].apply_pulses(np.asarray(n), self._rng)
        self._sync()

    def program(self, delta: Mapping[str, np.ndarray]) -> None:
        """Biases exactly; conductances open loop: one noisy read, then pulses counted from the nominal model."""
        pulses: dict[str, np.ndarray] = {}
        direct: dict[str, np.ndarray] = {}
        for name, step in delta.items():
            if name in self._devices:
                shape = self.spec.params[name].shape
                if np.shape(step) != shape:
                    raise ValueError(f"program {name}: expected shape {shape}, got {np.shape(step)}")
                pulses[name] = self._nominal_counts(self._devices[name].read(self._rng), np.asarray(step))
            else:
                direct[name] = step
        if direct:
            super().program(direct)
        if pulses:
            self.apply_pulses(pulses)

    def _nominal_counts(self, g: np.ndarray, step: np.ndarray) -> np.ndarray:
        m = self.device
        window = m.g_max - m.g_min
        u = np.clip((g - m.g_min) / window, 0.0, 1.0)
        target = np.clip(u + step / window, 0.0, 1.0)
        if np.isinf(m.a_pot) and np.isinf(m.a_dep):
            return np.rint((target - u) * m.levels).astype(np.int64)
        return np.rint(pulses_between(u, target, m.levels, m.a_pot, m.a_dep)).astype(np.int64)

    def _sync(self) -> None:
        """Copy the true device conductances into the circuit the solver sees."""
        self._replace_params({name: array.g for name, array in self._devices.items()})

    # --- snapshots ------------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, np.ndarray]:
        snap = super().snapshot()
        for name, array in self._devices.items():
            snap.update({f"device.{name}.{key}": value for key, value in array.state().items()})
        snap[_RNG_KEY] = np.array(json.dumps(self._rng.bit_generator.state))
        return snap

    def restore(self, snapshot: Mapping[str, np.ndarray]) -> None:
        super().restore(snapshot)
        for name, array in self._devices.items():
            prefix = f"device.{name}."
            array.load_state({k[len(prefix):]: v for k, v in snapshot.items() if k.startswith(prefix)})
        self._rng.bit_generator.state = json.loads(str(snapshot[_RNG_KEY]))
        self._sync()

    @property
    def devices(self) -> Mapping[str, DeviceArray]:
        """The true devices (for tests and benchmarks; learning rules never see them)."""
        return self._devices


__all__ = ["CrossbarNetwork"]
