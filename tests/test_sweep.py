"""Sweeps: grid parsing, a local pool, and a real Dask LocalCluster on 127.0.0.1 with a failing point and a re-run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from aeqprop.cli import main
from aeqprop.sweep import SweepError, expand, parse_grid

SWEEP_PROTOCOL = """
version = 1
[system]
kind = "resistive"
inputs = 64
hidden = [16]
outputs = 10
input_gain = 20.0
[algorithm]
kind = "ep"
beta = 0.2
[optimizer]
kind = "sgd"
lr = 0.05
[data]
name = "digits"
train_limit = 60
test_limit = 40
[run]
epochs = 1
seed = 3
"""


@pytest.fixture
def sweep_protocol(tmp_path: Path) -> Path:
    path = tmp_path / "sweep.toml"
    path.write_text(SWEEP_PROTOCOL)
    return path


def _rows(folder: Path) -> list[dict[str, str]]:
    with open(folder / "summary.csv") as fh:
        return list(csv.DictReader(fh))


def test_grid_values_split_outside_brackets_and_expand_to_the_product() -> None:
    grid = parse_grid(["system.hidden=[16],[8, 8]", "algorithm.beta=0.1,0.2,0.3"])
    assert grid == [("system.hidden", ["[16]", "[8, 8]"]), ("algorithm.beta", ["0.1", "0.2", "0.3"])]
    points = expand(grid)
    assert len(points) == 6 and len({p.name for p in points}) == 6
    assert points[1].values == {"system.hidden": [16], "algorithm.beta": 0.2}
    assert points[1].overrides == ("system.hidden=[16]", "algorithm.beta=0.2")
    for bad in (["beta"], ["a=1", "a=2"], ["a=1,,2"]):
        with pytest.raises(SweepError):
            parse_grid(bad)


@pytest.mark.slow
def test_local_pool_sweep_writes_table_plot_and_seeds_then_skips_on_rerun(
    sweep_protocol: Path, tmp_path: Path, capsys
) -> None:
    """Two points on a process pool; an invalid point is reported without running; a re-run skips, a grown grid
    runs only what is new, and a different fixed --set is refused."""
    out = tmp_path / "local"
    args = ["sweep", str(sweep_protocol), "--grid", "run.batch_size=4,8,0", "--set", "run.seed=5",
            "--out", str(out), "--workers", "2"]
    assert main(args) == 1  # batch_size = 0 is invalid: reported, the others still run
    rows = {r["run.batch_size"]: r for r in _rows(out)}
    assert rows["4"]["status"] == rows["8"]["status"] == "completed"
    assert rows["0"]["status"] == "failed" and "run.batch_size" in rows["0"]["error"]
    assert rows["4"]["seed"] == "5"
    # It learned: the training loss ends below what a rule that learns nothing reaches. Measured (seed 5,
    # batch 4): 0.534 trained; 0.701 with optimizer.lr = 0; 2.27 with beta = 1e-9 (gradients drowned in solver
    # error). Test accuracy on 40 samples after one epoch does not separate them (0.05 trained, 0.075 frozen).
    summary = json.loads((Path(rows["4"]["run_dir"]) / "summary.json").read_text())
    assert summary["train_loss"] < 0.6
    assert (out / "summary.png").stat().st_size > 1000
    assert json.loads((out / "sweep.json").read_text())["fixed"] == ["run.seed=5"]
    capsys.readouterr()
    assert main(args) == 1
    assert "0 ran, 2 skipped (finished before), 1 failed" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["sweep", str(sweep_protocol), "--out", str(out)])  # --grid is required
    assert main(["sweep", str(sweep_protocol), "--grid", "run.batch_size=4", "--out", str(out)]) == 2  # other --set
    capsys.readouterr()
    assert main([*args[:3], "run.batch_size=4,8,0,2", *args[4:]]) == 1  # a grown grid runs only its new point
    assert "1 ran, 2 skipped (finished before), 1 failed" in capsys.readouterr().out
    assert len(_rows(out)) == 4


@pytest.mark.slow
def test_dask_local_cluster_runs_eight_points_survives_a_failure_and_reruns_nothing_twice(
    sweep_protocol: Path, tmp_path: Path, capsys
) -> None:
    """8 points on a real dask.distributed LocalCluster (2 worker processes, TCP on 127.0.0.1).

    One point (max_sweeps = 1) fails at run time; the other 7 complete. A second sweep over the same folder
    runs only the failed point again: the 7 finished run directories are not touched (same metrics and
    summary files, byte for byte and by modification time).
    """
    distributed = pytest.importorskip("distributed")
    out = tmp_path / "dask"
    grid = "system.max_sweeps=1,200,300,400,500,600,700,800"
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", protocol="tcp://",
        dashboard_address=None, silence_logs=40,
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        args = ["sweep", str(sweep_protocol), "--grid", grid, "--out", str(out), "--cluster", address]
        assert main(args) == 1
        first = capsys.readouterr().out
        assert "7 ran, 0 skipped (finished before), 1 failed" in first
        rows = {r["system.max_sweeps"]: r for r in _rows(out)}
        assert len(rows) == 8
        assert rows["1"]["status"] == "failed" and "NotSettled" in rows["1"]["error"]
        done = [r for k, r in rows.items() if k != "1"]
        assert all(r["status"] == "completed" and r["seed"] == "3" for r in done)
        stamps = {
            r["point"]: [(f.read_bytes(), f.stat().st_mtime_ns) for f in sorted(Path(r["run_dir"]).iterdir())]
            for r in done
        }
        assert main(args) == 1
        second = capsys.readouterr().out
        assert "0 ran, 7 skipped (finished before), 1 failed" in second
        for r in done:
            now = [(f.read_bytes(), f.stat().st_mtime_ns) for f in sorted(Path(r["run_dir"]).iterdir())]
            assert now == stamps[r["point"]]
