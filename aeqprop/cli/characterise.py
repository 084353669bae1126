"""``aeqprop characterise PROTOCOL``: measure the protocol's system's devices and write a device file.

The system is built as ``aeqprop run`` builds it (same seed), so a simulated chip is the one a run trains and
a rig is driven within its protocol's safety limits. The run directory holds ``devices.json`` (the device
file), ``curves.png`` and ``spread.png``, the resolved protocol and, while measuring, ``checkpoint.npz``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from aeqprop.characterise import BudgetExhausted, CharacterisationError, Characteriser, Settings
from aeqprop.characterise_fit import fit
from aeqprop.characterise_plots import curves, spread
from aeqprop.protocol import ProtocolError, build, load_protocol, read_raw, to_dict, validate_raw
from aeqprop.rundir import RunDirectory
from aeqprop.system import AeqpropError

HELP = "measure a chip's devices (read noise, pulse curves, spread, stuck devices) into a device file"

DEVICE_FILE = "devices.json"


class CharacteriseFailed(AeqpropError):
    """An instrument fault or an unsettled system stopped the measurement; what was measured is checkpointed."""

    exit_code = 1


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("protocol", help="protocol file (TOML) naming the system to characterise")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a protocol field (repeatable)")
    parser.add_argument("--out", help="run directory (default: <run.out>/characterise-<protocol name>-<time>)")
    parser.add_argument("--resume", metavar="DIR", help="finish an interrupted characterisation in DIR")
    parser.add_argument("--cycles", type=int, default=3, help="depression/potentiation cycles (default 3)")
    parser.add_argument("--pulses", type=int, default=64,
                        help="pulses per train; must exceed the device's levels (default 64)")
    parser.add_argument("--step", type=int, default=1, help="pulses between reads (default 1)")
    parser.add_argument("--reads", type=int, default=1, help="reads averaged per point of a train (default 1)")
    parser.add_argument("--noise-reads", type=int, default=32, help="repeated reads for the read noise (default 32)")
    parser.add_argument("--drift-reads", type=int, default=0, help="reads over time for drift (default 0: skip)")
    parser.add_argument("--drift-interval", type=float, default=1.0, help="seconds between drift reads")
    parser.add_argument("--max-pulses", type=int, default=None, help="endurance budget: most pulses per device")
    parser.add_argument("--max-seconds", type=float, default=None,
                        help="time budget; stops at the next phase, resumable with --resume")


def settings_of(args: argparse.Namespace) -> Settings:
    return Settings(cycles=args.cycles, pulses=args.pulses, step=args.step, reads=args.reads,
                    noise_reads=args.noise_reads, drift_reads=args.drift_reads,
                    drift_interval_s=args.drift_interval, max_pulses=args.max_pulses, max_seconds=args.max_seconds)


def run(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.protocol, args.overrides)
    settings = settings_of(args)
    if args.resume:
        run_dir = RunDirectory.open(args.resume)
        saved = to_dict(validate_raw(read_raw(run_dir.protocol_path), str(run_dir.protocol_path)))
        if saved != to_dict(protocol):
            raise ProtocolError(f"--resume {args.resume}: the protocol differs from the one being characterised")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"characterise-{Path(args.protocol).stem}-{stamp}"
        out = Path(args.out) if args.out else Path(protocol.run.out) / name
        if out.exists() and any(out.iterdir()):
            raise ProtocolError(f"--out {out}: directory exists and is not empty (use --resume {out} to continue it)")
    system = build(protocol).system
    try:
        characteriser = Characteriser(system, settings, log=print)
        if args.resume:
            characteriser.run_dir = run_dir
            characteriser.resume()
            print(f"resuming {run_dir.path} after phase {characteriser.data.phases_done}")
        else:
            run_dir = RunDirectory.create(out, to_dict(protocol))
            characteriser.run_dir = run_dir
            print(f"run directory: {run_dir.path}")
        print(f"{system.spec.description}; {settings.planned_pulses()} pulses per device planned")
        try:
            data = characteriser.run()
        except (BudgetExhausted, CharacterisationError):
            raise
        except AeqpropError as exc:  # a fault: the phases done so far are checkpointed
            done = characteriser.data.phases_done
            raise CharacteriseFailed(f"{type(exc).__name__}: {exc} (measurements checkpointed after phase {done}; "
                                     f"continue with --resume {run_dir.path})") from exc
    finally:
        system.close()
    devices = fit(data, settings, system.spec.description)
    devices.save(run_dir.path / DEVICE_FILE)
    curves(data, settings, devices, run_dir.path / "curves.png")
    spread(devices, run_dir.path / "spread.png")
    p = devices.pooled
    print(f"device file: {run_dir.path / DEVICE_FILE}")
    print(json.dumps({
        "levels": round(p.levels, 2), "a_pot": p.a_pot, "a_dep": p.a_dep, "g_min": p.g_min, "g_max": p.g_max,
        "c2c": round(p.c2c, 5), "d2d": round(p.d2d, 4), "read_noise": round(p.read_noise, 5),
        "stuck": len(devices.stuck),
    }))
    return 0


__all__ = ["HELP", "add_arguments", "run", "settings_of"]
