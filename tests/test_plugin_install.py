"""A plug-in installed with pip into a fresh venv works in validate, run, --resume, sweep and check.

Real parts: a new virtual environment, a non-editable ``pip install`` of aeqprop (a copy of this tree) and of
the example plug-in (examples/linear-chip), and the installed ``aeqprop`` command run from a folder outside
the repository. Offline: ``--no-index --no-build-isolation``; the venv borrows the third-party packages
(numpy, pydantic, setuptools, pip, ...) of the test's own environment through a ``.pth`` file, never aeqprop.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest

from .conftest import ROOT

pytestmark = pytest.mark.slow

PLUGIN = ROOT / "examples" / "linear-chip"
DEPS = ("numpy", "scipy", "pydantic", "pydantic_core", "sklearn", "matplotlib", "tqdm", "tomli_w", "pyvisa",
        "serial", "dask", "distributed", "pip", "setuptools", "typing_extensions")
SKIP = shutil.ignore_patterns(".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__",
                              ".pytest_cache", ".mypy_cache", ".ruff_cache")


def _dependency_dirs(farm: Path) -> list[str]:
    """Folders holding the dependencies, without aeqprop itself (the venv must see only its fresh install).

    A folder that also holds aeqprop (CI installs everything into one venv) is offered through ``farm``: a
    folder of links to every entry of it except aeqprop's own.
    """
    dirs: list[str] = []
    views: dict[Path, Path] = {}
    for name in DEPS:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue
        folder = Path(spec.origin).resolve().parent.parent
        if any(folder.glob("aeqprop-*.dist-info")) or (folder / "aeqprop").exists() \
                or any(folder.glob("__editable__*aeqprop*")):
            if folder not in views:
                view = views[folder] = farm / f"deps{len(views)}"
                view.mkdir(parents=True)
                for entry in folder.iterdir():
                    if entry.name == "aeqprop" or entry.name.startswith(("aeqprop-", "__editable__")) \
                            or entry.suffix == ".pth":
                        continue
                    (view / entry.name).symlink_to(entry)
            folder = views[folder]
        if str(folder) not in dirs:
            dirs.append(str(folder))
    return dirs


def _run(cmd: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("plugin")
    shutil.copytree(ROOT, base / "aeqprop-src", ignore=SKIP)
    shutil.copytree(PLUGIN, base / "plugin", ignore=SKIP)
    env = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    purelib = Path(sysconfig.get_path("purelib", vars={"base": str(env), "platbase": str(env)}))
    dirs = _dependency_dirs(base / "deps")
    if not any((Path(d) / "setuptools").is_dir() for d in dirs) or not any((Path(d) / "pip").is_dir() for d in dirs):
        pytest.skip("no pip/setuptools outside the aeqprop environment to build with offline")
    (purelib / "zz_dependencies.pth").write_text("\n".join(dirs) + "\n")
    python = env / "bin" / "python"
    done = _run([str(python), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
                 str(base / "aeqprop-src"), str(base / "plugin")], base)
    assert done.returncode == 0, done.stdout + done.stderr
    work = base / "work"
    work.mkdir()
    shutil.copy(PLUGIN / "linear-chip.toml", work / "chip.toml")
    return env


def _aeqprop(venv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run([str(venv / "bin" / "aeqprop"), *args], venv.parent / "work")


def _params(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "checkpoint.npz") as f:
        return {k: f[k] for k in f.files if k != "__state__"}


def test_installed_aeqprop_is_not_the_checkout(venv) -> None:
    done = _run([str(venv / "bin" / "python"), "-c", "import aeqprop, aeqprop_linear_chip; print(aeqprop.__file__)"],
                venv.parent / "work")
    assert done.returncode == 0, done.stderr
    assert str(venv) in done.stdout and str(ROOT) not in done.stdout


def test_plugin_kind_is_listed_and_validates(venv) -> None:
    listed = _aeqprop(venv, "systems")
    assert listed.returncode == 0, listed.stderr
    line = next(l for l in listed.stdout.splitlines() if l.startswith("  linear-chip "))
    assert "local, program" in line and "example plug-in" in line
    ok = _aeqprop(venv, "validate", "chip.toml")
    assert ok.returncode == 0 and "linear-chip system" in ok.stdout, ok.stderr
    bad = _aeqprop(venv, "validate", "chip.toml", "--set", "system.inputs=5")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1
    assert "4 features and 3 classes but the system has 5 inputs" in bad.stderr
    typo = _aeqprop(venv, "validate", "chip.toml", "--set", "system.gmax=2")
    assert typo.returncode == 2 and "system.gmax: unknown field" in typo.stderr


def test_plugin_runs_and_resumes_exactly(venv) -> None:
    work = venv.parent / "work"
    straight = _aeqprop(venv, "run", "chip.toml", "--out", "straight", "--set", "run.epochs=4")
    assert straight.returncode == 0, straight.stderr
    summary = json.loads((work / "straight" / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["test_accuracy"] > 0.6  # 3 classes: chance is 1/3
    first = _aeqprop(venv, "run", "chip.toml", "--out", "split", "--set", "run.epochs=2")
    assert first.returncode == 0, first.stderr
    resumed = _aeqprop(venv, "run", "chip.toml", "--resume", "split", "--set", "run.epochs=4")
    assert resumed.returncode == 0, resumed.stderr
    a, b = _params(work / "straight"), _params(work / "split")
    assert a.keys() == b.keys() == {"w", "b"} and all(np.array_equal(a[k], b[k]) for k in a)


def test_plugin_sweeps_on_two_worker_processes(venv) -> None:
    done = _aeqprop(venv, "sweep", "chip.toml", "--grid", "optimizer.lr=0.05,0.1", "--workers", "2",
                    "--set", "run.epochs=2", "--out", "sweep")
    assert done.returncode == 0, done.stdout + done.stderr
    with open(venv.parent / "work" / "sweep" / "summary.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["status"] for r in rows] == ["completed", "completed"]


def test_plugin_passes_the_conformance_kit(venv) -> None:
    if not (ROOT / "aeqprop" / "testing.py").is_file():
        pytest.skip("the conformance kit (aeqprop.testing, branch kit) is not merged yet")
    done = _aeqprop(venv, "check", "chip.toml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 failed" in done.stdout


def test_plugin_fidelity_bench_uses_its_oracle(venv) -> None:
    done = _aeqprop(venv, "bench", "fidelity", "chip.toml", "--samples", "4", "--json", "--estimator", "centered",
                    "--beta", "0.25")
    assert done.returncode == 0, done.stderr
    points = json.loads(done.stdout)["points"]
    # s(β) = (u + βy)/(1 + β), so the centered difference is the oracle's gradient times 1/(1 − β²) exactly
    assert len(points) == 1 and points[0]["cosine"] > 0.999999
    assert points[0]["relative_error"] == pytest.approx(0.25**2 / (1 - 0.25**2), rel=1e-9)


def test_plugin_served_as_a_virtual_board(venv) -> None:
    """`aeqprop serve` serves any simulated kind with local and program, the plug-in's included."""
    import re

    import pyvisa

    proc = subprocess.Popen([str(venv / "bin" / "aeqprop"), "serve", "chip.toml", "--port", "0"],
                            cwd=venv.parent / "work", stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        resource = re.search(r"serving linear-chip system at (TCPIP0::127\.0\.0\.1::\d+::SOCKET) ", line).group(1)
        rm = pyvisa.ResourceManager("@py")
        inst = rm.open_resource(resource, read_termination="\n", write_termination="\n", timeout=5000)
        assert inst.query("CONF:SIZE?") == "4,3"
        inst.close()
        rm.close()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


DASK_SWEEP = """
import sys
import distributed
from aeqprop.cli import main

with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                              protocol="tcp://", dashboard_address=None, silence_logs=40) as cluster:
    sys.exit(main(["sweep", "chip.toml", "--grid", "run.seed=1,2", "--set", "run.epochs=1", "--out", "dask",
                   "--cluster", cluster.scheduler_address]))
"""


def test_plugin_sweeps_on_dask_workers(venv) -> None:
    """Dask worker processes find the plug-in's kind through the entry points themselves."""
    pytest.importorskip("distributed")
    done = _run([str(venv / "bin" / "python"), "-c", DASK_SWEEP], venv.parent / "work")
    assert done.returncode == 0, done.stdout + done.stderr
    with open(venv.parent / "work" / "dask" / "summary.csv") as fh:
        assert [r["status"] for r in csv.DictReader(fh)] == ["completed", "completed"]


BROKEN_PYPROJECT = """
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "aeqprop-broken-chip"
version = "0.0.1"

[project.entry-points."aeqprop.systems"]
broken-chip = "broken_chip:BrokenSettings"

[tool.setuptools]
py-modules = ["broken_chip"]
"""

BROKEN_MODULE = '''
from typing import Literal

from aeqprop import SystemSettings


class BrokenSettings(SystemSettings):
    """No description, no build: the registry must say so when the kind is used."""

    kind: Literal["broken-chip"] = "broken-chip"

    def capabilities(self):
        return frozenset({"local", "program"})

    def feature_counts(self):
        return 4, 3
'''


def test_broken_plugin_is_named_with_its_reason(venv) -> None:
    """A plug-in that breaks the settings contract fails with one line naming its entry point."""
    package = venv.parent / "broken"
    package.mkdir()
    (package / "pyproject.toml").write_text(BROKEN_PYPROJECT)
    (package / "broken_chip.py").write_text(BROKEN_MODULE)
    done = _run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-build-isolation",
                 "--no-index", str(package)], venv.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    work = venv.parent / "work"
    (work / "broken.toml").write_text((work / "chip.toml").read_text().replace('"linear-chip"', '"broken-chip"'))
    bad = _aeqprop(venv, "validate", "broken.toml")
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1, bad.stderr
    assert bad.stderr.startswith("aeqprop: error: broken.toml: system.kind: entry point 'broken-chip'")
    assert "entry point 'broken-chip' = 'broken_chip:BrokenSettings'" in bad.stderr
    assert "does not implement build" in bad.stderr and "description" in bad.stderr
    listed = _aeqprop(venv, "systems")
    assert listed.returncode == 0 and "broken-chip" in listed.stdout and "BROKEN" in listed.stdout
    assert "linear-chip" in listed.stdout  # one broken plug-in does not hide the others
