"""``aeqprop report`` on a real sweep, opened in a real headless Chromium; ``aeqprop plot`` on several runs.

Chromium comes from the system packages (Debian: ``apt-get install -y chromium``). Without it the browser
tests are skipped with that hint, unless ``AEQPROP_REQUIRE_CHROMIUM=1`` (CI) makes its absence a failure.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from aeqprop.cli import main
from aeqprop.plotting import learning_curves_figure, png_bytes
from aeqprop.report import fmt
from aeqprop.runview import open_run


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    if os.environ.get("AEQPROP_REQUIRE_CHROMIUM") == "1":
        pytest.fail("AEQPROP_REQUIRE_CHROMIUM=1 but no chromium found (apt-get install -y chromium)")
    pytest.skip("headless browser test needs Chromium: apt-get install -y chromium")


def _render(html_file: Path, profile: Path) -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the page's console messages, from a headless Chromium."""
    res = subprocess.run(
        [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
         "--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", "--dump-dom", html_file.resolve().as_uri()],
        check=False, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    console = [line for line in res.stderr.splitlines() if ":CONSOLE" in line]
    return res.stdout, console


class _Cells(HTMLParser):
    """Collects the text of elements carrying data-key, with their data-* attributes; and the images."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: list[tuple[dict[str, str], str]] = []
        self.images: list[dict[str, str]] = []
        self.body: dict[str, str] = {}
        self._open: dict[str, str] | None = None
        self._text = ""

    def handle_starttag(self, tag, attrs):
        attrs = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(attrs)
        if tag == "body":
            self.body = attrs
        if "data-key" in attrs:
            self._open, self._text = attrs, ""

    def handle_data(self, data):
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag):
        if self._open is not None and tag in ("td", "span"):
            self.cells.append((self._open, self._text))
            self._open = None


@pytest.fixture(scope="module")
def sweep(tmp_path_factory) -> Path:
    """A real two-point sweep of the tiny digits protocol (seeds 1 and 2)."""
    from tests.conftest import TINY_PROTOCOL

    folder = tmp_path_factory.mktemp("sweep")
    protocol = folder / "tiny.toml"
    protocol.write_text(TINY_PROTOCOL)
    out = folder / "sw"
    assert main(["sweep", str(protocol), "--grid", "run.seed=1,2", "--set", "run.epochs=2",
                 "--set", "data.train_limit=300", "--out", str(out), "--workers", "1"]) == 0
    return out


def test_report_of_a_sweep_renders_offline_with_the_run_numbers(sweep, tmp_path, capsys) -> None:
    out = tmp_path / "report.html"
    assert main(["report", str(sweep), "-o", str(out)]) == 0
    text = out.read_text()
    # self-contained: no address outside the file for the browser to fetch
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", text, re.IGNORECASE)
    assert "<link" not in text and "@import" not in text

    dom, console = _render(out, tmp_path / "profile")
    assert console == [], console
    page = _Cells()
    page.feed(dom)
    runs = sorted(p for p in sweep.iterdir() if (p / "protocol.toml").is_file())
    assert len(runs) == 2
    assert len(page.images) >= 2 + 2  # learning curves, costs, and device views of each run
    assert page.body.get("data-figures") == f"{len(page.images)} decoded, 0 broken"
    assert all(img["src"].startswith("data:image/png;base64,") for img in page.images)

    shown = {(a.get("data-run"), a["data-key"]): t for a, t in page.cells if "data-run" in a and "data-device" not in a}
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        for key in ("test_accuracy", "train_accuracy", "best_test_accuracy", "epochs", "seed", "status"):
            assert shown[(run.name, key)] == fmt(key, summary[key]), (run.name, key)
        assert (run / "protocol.toml").read_text().strip().splitlines()[0] in dom
    assert shown[(runs[0].name, "seed")] == "1" and shown[(runs[1].name, "seed")] == "2"
    per_epoch = [(a["data-epoch"], a["data-key"], t) for a, t in page.cells if "data-epoch" in a]
    expected_cells = [(str(r["epoch"]), k, fmt(k, r[k])) for run in runs
                      for r in (json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines())
                      for k in ("train_loss", "train_accuracy", "test_accuracy")]
    assert [c for c in per_epoch if c[1] in ("train_loss", "train_accuracy", "test_accuracy")] == expected_cells
    # the embedded learning-curve figure is the one drawn from these run directories
    views = [open_run(r) for r in runs]
    expected = png_bytes(learning_curves_figure([(v.name, v.records) for v in views]))
    curve = next(img for img in page.images if img["alt"] == "learning curves")
    assert base64.b64decode(curve["src"].split(",", 1)[1]) == expected
    assert "aeqprop run " in dom and "pip install" in dom


def test_browser_check_sees_console_errors(tmp_path) -> None:
    """The console check above can fail: a page with a script error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><script>console.error('boom'); missing_function();</script></body></html>")
    _, console = _render(bad, tmp_path / "profile")
    assert any("boom" in line for line in console) and any("missing_function" in line for line in console)


def test_device_views_mark_devices_at_the_window_edges(tmp_path, capsys) -> None:
    """A crossbar run (bounded conductance window): report and plot show the fractions at the edges."""
    from tests.conftest import ROOT

    run = tmp_path / "xbar"
    assert main(["run", str(ROOT / "protocols" / "digits-memristor.toml"), "--out", str(run), "--no-progress",
                 "--set", "run.epochs=1", "--set", "data.train_limit=120", "--set", "data.test_limit=60",
                 ]) == 0
    view = open_run(run)
    weights = [d for d in view.devices if d.role == "weight"]
    assert weights and all(d.low is not None and d.high is not None for d in weights)
    lows = [d.at_edges(0.01)[0] for d in weights]
    assert any(v > 0 for v in lows)  # the protocol sticks 0.5 % of devices at g_min
    assert main(["report", str(run)]) == 0
    page = _Cells()
    page.feed((run / "report.html").read_text())
    at_low = {a["data-device"]: t for a, t in page.cells if a.get("data-key") == "low"}
    for dev, frac in zip(weights, lows):
        assert at_low[dev.name] == fmt("test_accuracy", frac)
    capsys.readouterr()
    assert main(["plot", str(run)]) == 0
    written = capsys.readouterr().out.split()
    assert {Path(p).name for p in written} == {"learning_curve.png", "costs.png", "devices.png",
                                               "conductance_maps.png"}
    assert all(Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in written)


def test_plot_overlays_several_runs(sweep, tmp_path, capsys) -> None:
    assert main(["plot", str(sweep), "--out-dir", str(tmp_path / "p")]) == 0
    names = {Path(p).name for p in capsys.readouterr().out.split()}
    runs = sorted(p.name for p in sweep.iterdir() if (p / "protocol.toml").is_file())
    assert {"learning_curve.png", "costs.png", *(f"{r}-devices.png" for r in runs)} <= names


def test_report_refuses_a_folder_that_is_no_run(tmp_path, capsys) -> None:
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a run directory" in err
    assert not (tmp_path / "report.html").exists()


def test_report_of_a_run_still_going_reads_the_metrics_log(sweep, tmp_path, capsys) -> None:
    """Without summary.json (a live or killed run) the summary comes from metrics.jsonl."""
    point = next(p for p in sorted(sweep.iterdir()) if (p / "protocol.toml").is_file())
    live = tmp_path / "live"
    shutil.copytree(point, live)
    summary = json.loads((live / "summary.json").read_text())
    (live / "summary.json").unlink()
    assert main(["report", str(live)]) == 0
    page = _Cells()
    page.feed((live / "report.html").read_text())
    shown = {a["data-key"]: t for a, t in page.cells if a.get("data-run") == "live"}
    assert shown["status"] == "running, or stopped without a summary"
    for key in ("test_accuracy", "train_accuracy", "best_test_accuracy", "epochs", "samples_per_s"):
        assert shown[key] == fmt(key, summary[key]), key
