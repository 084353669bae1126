"""Parameter sweeps: one run directory per grid point, in parallel on a process pool or a Dask cluster.

A sweep folder holds ``sweep.json`` (protocol, grid, fixed overrides), one run directory per point (named from
its overrides, so a re-run finds it again), ``summary.csv`` and ``summary.png``. A point whose
``summary.json`` says ``completed`` is skipped on a re-run; a point that failed is reported with its error and
does not stop the others; a re-run retries it (resuming from its checkpoint when it has one). A re-run may
extend the grid (new values, new seeds); it may not change the protocol or the fixed ``--set`` overrides.

Workers receive the raw protocol (a dict), not a path, so that a Dask worker on another machine needs only
aeqprop installed, not the user's files; the data are loaded where the point runs.
"""

from __future__ import annotations

import csv
import itertools
import json
import re
import shutil
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import ProtocolError, apply_overrides, validate_raw
from .rundir import SUMMARY, RunDirectory
from .system import AeqpropError

SWEEP_FILE = "sweep.json"
CSV_FILE = "summary.csv"
PLOT_FILE = "summary.png"


class SweepError(AeqpropError):
    """A grid specification is malformed or the sweep folder belongs to a different sweep."""


@dataclass(frozen=True)
class Point:
    """One grid point: its folder name, its ``--set`` overrides and the values it sets."""

    name: str
    overrides: tuple[str, ...]
    values: dict[str, Any] = field(hash=False, compare=False)


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside brackets and quotes, so ``hidden=[32],[64, 64]`` gives two values."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_grid(specs: Iterable[str]) -> list[tuple[str, list[str]]]:
    """``["key=v1,v2", ...]`` → ``[(key, [raw v1, raw v2]), ...]``; values stay TOML text for ``--set``."""
    grid: list[tuple[str, list[str]]] = []
    for spec in specs:
        if "=" not in spec:
            raise SweepError(f"--grid {spec!r}: expected section.key=v1,v2,...")
        key, values = spec.split("=", 1)
        key = key.strip()
        raws = _split_top_level(values)
        if not key or any(not r for r in raws):
            raise SweepError(f"--grid {spec!r}: empty key or value")
        if key in {k for k, _ in grid}:
            raise SweepError(f"--grid {spec!r}: {key} given twice")
        grid.append((key, raws))
    if not grid:
        raise SweepError("a sweep needs at least one --grid key=v1,v2,...")
    return grid


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=+-]+", "_", text).strip("_")


def expand(grid: list[tuple[str, list[str]]]) -> list[Point]:
    """The Cartesian product of the grid, in order; folder names follow the values, not the position."""
    keys = [k for k, _ in grid]
    points = []
    for combo in itertools.product(*(v for _, v in grid)):
        overrides = tuple(f"{k}={v}" for k, v in zip(keys, combo))
        name = "__".join(_slug(o) for o in overrides)[:180]
        points.append(Point(name, overrides, {k: _value(v) for k, v in zip(keys, combo)}))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise SweepError("two grid points map to the same folder name; use distinct values")
    return points


def read_summary(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / SUMMARY).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def is_finished(run_dir: Path) -> bool:
    summary = read_summary(run_dir)
    return summary is not None and summary.get("status") == "completed"


def run_point(raw: dict[str, Any], overrides: list[str], out: str, source: str) -> dict[str, Any]:
    """Train one point into ``out`` and return its summary (``status`` completed or failed); never raises.

    Module level and dependent only on its arguments, so that process pools and Dask workers can run it.
    """
    from .api import Experiment, RunFailed, versions

    path = Path(out)
    if is_finished(path):
        return {**(read_summary(path) or {}), "status": "skipped"}
    summary: dict[str, Any] = {}
    try:
        protocol = validate_raw(apply_overrides(raw, overrides), f"{source} [{path.name}]")
        resume = (path / "checkpoint.npz").is_file()
        if path.exists() and not resume:
            shutil.rmtree(path)
        with Experiment.from_protocol(protocol, progress=False, log=None) as experiment:
            experiment.source = source
            summary = experiment.fit(path, resume=resume)
    except Exception as exc:  # a failed point is reported, never lost among the others
        written = read_summary(path) if path.is_dir() else None  # fit() wrote the figures it reached
        cause = exc.__cause__
        exc = cause if isinstance(exc, RunFailed) and isinstance(cause, Exception) else exc
        summary = {**(written or {}), "status": "failed", "error": f"{type(exc).__name__}: {exc}".splitlines()[0]}
    summary.update(overrides=list(overrides), versions=versions(), protocol=source)
    path.mkdir(parents=True, exist_ok=True)
    RunDirectory(path).write_summary(summary)
    return summary


@dataclass
class SweepResult:
    """Per-point summaries (in grid order) and the counts a re-run is judged by."""

    folder: Path
    rows: list[dict[str, Any]]
    ran: list[str]
    skipped: list[str]
    failed: list[str]


Submit = Callable[[list[tuple[Point, Path]], Callable[[Point, dict[str, Any]], None]], None]


def _local_pool(workers: int, raw: dict, source: str) -> Submit:
    def submit(todo, done) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(run_point, raw, list(p.overrides), str(d), source): p for p, d in todo}
            for future in as_completed(futures):
                point = futures[future]
                try:
                    done(point, future.result())
                except Exception as exc:  # the worker itself died (e.g. killed for memory)
                    done(point, {"status": "failed", "error": f"worker lost: {exc}"})

    return submit


def _dask(address: str, raw: dict, source: str) -> Submit:
    def submit(todo, done) -> None:
        from distributed import Client, as_completed

        try:
            client = Client(address, timeout="30s")
        except OSError as exc:
            raise SweepError(f"--cluster {address}: cannot connect to a Dask scheduler ({exc})") from None
        try:
            futures = {
                client.submit(run_point, raw, list(p.overrides), str(d), source, pure=False, key=f"aeqprop-{p.name}"): p
                for p, d in todo
            }
            for future in as_completed(futures):
                point = futures[future]
                try:
                    done(point, future.result())
                except Exception as exc:  # the task or its worker died
                    done(point, {"status": "failed", "error": f"worker lost: {exc}"})
        finally:
            client.close()

    return submit


def run_sweep(
    protocol_path: str | Path,
    raw: dict[str, Any],
    grid_specs: list[str],
    folder: str | Path,
    *,
    fixed: Sequence[str] = (),
    workers: int = 2,
    cluster: str | None = None,
    log: Callable[[str], None] | None = print,
) -> SweepResult:
    """Run every unfinished point of the grid; write ``summary.csv`` and ``summary.png``; return the counts."""
    grid = parse_grid(grid_specs)
    points = expand(grid)
    folder = Path(folder)
    source = str(protocol_path)
    base = apply_overrides(raw, list(fixed))
    record = {"protocol": base, "grid": [[k, v] for k, v in grid], "fixed": list(fixed)}
    sweep_file = folder / SWEEP_FILE
    if sweep_file.is_file():  # the grid may grow (points are named by their values); the base may not change
        saved = json.loads(sweep_file.read_text())
        recorded = json.loads(json.dumps({k: record[k] for k in ("protocol", "fixed")}))
        if {k: saved.get(k) for k in ("protocol", "fixed")} != recorded:
            raise SweepError(f"{folder}: holds a sweep of a different protocol or --set; use another --out")
    folder.mkdir(parents=True, exist_ok=True)
    sweep_file.write_text(json.dumps(record, indent=2) + "\n")

    results: dict[str, dict[str, Any]] = {}
    ran: list[str] = []
    skipped: list[str] = []
    failed: list[str] = []
    todo: list[tuple[Point, Path]] = []
    for point in points:
        run_dir = folder / point.name
        if is_finished(run_dir):
            results[point.name] = read_summary(run_dir) or {}
            skipped.append(point.name)
            continue
        try:  # invalid points fail here, before any worker starts
            validate_raw(apply_overrides(base, list(point.overrides)), f"{source} [{point.name}]")
        except ProtocolError as exc:
            results[point.name] = {"status": "failed", "error": str(exc)}
            failed.append(point.name)
            continue
        todo.append((point, run_dir))
    if log:
        log(f"sweep {folder}: {len(points)} points, {len(skipped)} finished already, {len(todo)} to run, "
            f"{len(failed)} invalid")

    def done(point: Point, summary: dict[str, Any]) -> None:
        results[point.name] = summary
        (failed if summary.get("status") == "failed" else ran).append(point.name)
        if log:
            acc = summary.get("test_accuracy")
            tail = f"test {100 * acc:.2f}%" if isinstance(acc, float) else summary.get("error", "")
            log(f"  {summary.get('status', '?'):9s} {point.name}: {tail}")

    if todo:
        submit = _dask(cluster, base, source) if cluster else _local_pool(workers, base, source)
        submit(todo, done)
    rows = [_row(p, folder, results.get(p.name, {})) for p in points]
    write_csv(folder / CSV_FILE, rows, [k for k, _ in grid])
    plot_sweep(folder / PLOT_FILE, rows, [k for k, _ in grid])
    return SweepResult(folder, rows, ran, skipped, failed)


COLUMNS = ("status", "seed", "test_accuracy", "best_test_accuracy", "train_accuracy", "epochs", "wall_s", "error")


def _row(point: Point, folder: Path, summary: dict[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {"point": point.name, **point.values}
    row.update({c: summary.get(c) for c in COLUMNS})
    row["run_dir"] = str(folder / point.name)
    return row


def write_csv(path: Path, rows: list[dict[str, Any]], keys: list[str]) -> None:
    columns = ["point", *keys, *COLUMNS, "run_dir"]
    with open(path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({c: json.dumps(v) if isinstance(v, (list, dict)) else v for c, v in row.items()})


def plot_sweep(path: Path, rows: list[dict[str, Any]], keys: list[str]) -> None:
    """Test accuracy against the first grid key, one line per combination of the others; failures as x."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    first, rest = keys[0], keys[1:]
    xs_all = [r[first] for r in rows]
    numeric = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in xs_all)
    categories = list(dict.fromkeys(json.dumps(x) for x in xs_all))

    def xpos(x: Any) -> float:
        return float(x) if numeric else float(categories.index(json.dumps(x)))

    fig, ax = plt.subplots(figsize=(6, 4))
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(", ".join(f"{k}={r[k]}" for k in rest) or "test accuracy", []).append(r)
    for label, members in groups.items():
        ok = [r for r in members if isinstance(r.get("test_accuracy"), float)]
        bad = [r for r in members if r.get("status") == "failed"]
        line = ax.plot([xpos(r[first]) for r in ok], [100 * r["test_accuracy"] for r in ok], "o-", label=label)
        if bad:
            ax.plot([xpos(r[first]) for r in bad], [0.0] * len(bad), "x", color=line[0].get_color(), ms=9)
    if numeric and all(x > 0 for x in xs_all) and max(xs_all) / max(min(xs_all), 1e-300) > 20:
        ax.set_xscale("log")
    if not numeric:
        ax.set_xticks(range(len(categories)), categories, rotation=30)
    ax.set_xlabel(first)
    ax.set_ylabel("test accuracy (%)  (x = failed)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["Point", "SweepError", "SweepResult", "expand", "is_finished", "parse_grid", "run_point", "run_sweep"]
