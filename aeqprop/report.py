"""One self-contained HTML report of one or several run directories, to hand to a colleague as one file.

Everything is inside the file: figures as base64 PNG ``data:`` URIs, styles and a few lines of script inline,
no web fonts or external addresses, so it opens offline in any browser. Numbers carry ``data-run``/``data-key``
attributes so tests (and scripts) can read them back from the rendered page.
"""

from __future__ import annotations

import base64
import html
import math
import platform
import shlex
import time
from collections.abc import Sequence
from typing import Any

from . import __version__
from .plotting import (
    counters_figure,
    device_histograms_figure,
    device_maps_figure,
    learning_curves_figure,
    png_bytes,
)
from .runview import COUNTERS, RunView

#: Summary rows of the report (key in summary.json → label); percentages are shown with two decimals.
SUMMARY_ROWS = {
    "status": "status",
    "epochs": "epochs",
    "test_accuracy": "test accuracy",
    "best_test_accuracy": "best test accuracy",
    "train_accuracy": "train accuracy",
    "train_loss": "train loss",
    "wall_s": "wall time",
    "samples_per_s": "samples / s",
    "seed": "seed",
}
PERCENT = {"test_accuracy", "best_test_accuracy", "train_accuracy"}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2em auto; max-width: 1150px;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; }
.meta { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
img { max-width: 100%; height: auto; display: block; margin: 0.5em 0; }
pre { background: #f7f7f7; padding: 0.8em; overflow-x: auto; font-size: 0.85em; border: 1px solid #e4e4e4; }
.ok { color: #1a7f37; } .bad { color: #b42318; }
details summary { cursor: pointer; font-weight: 600; margin: 0.4em 0; }
"""

#: Marks the page once every embedded figure has decoded (a headless browser reads the mark back).
SCRIPT = """
window.addEventListener("load", function () {
  var imgs = Array.prototype.slice.call(document.images);
  var bad = imgs.filter(function (img) { return !(img.complete && img.naturalWidth > 0); });
  document.body.setAttribute("data-figures", imgs.length + " decoded, " + bad.length + " broken");
});
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _img(png: bytes, alt: str) -> str:
    data = base64.b64encode(png).decode()
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{data}">'


def fmt(key: str, value: Any) -> str:
    """How a summary number is shown (tests compare with the same function)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if key in PERCENT:
        return f"{100 * value:.2f} %"
    if key == "wall_s":
        minutes, seconds = divmod(float(value), 60)
        return f"{int(minutes)} min {seconds:.1f} s" if minutes else f"{seconds:.1f} s"
    if key == "samples_per_s":
        return f"{value:.0f}"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _summary_table(views: Sequence[RunView]) -> str:
    head = "".join(f"<th>{_e(v.name)}</th>" for v in views)
    rows = [f"<tr><th>run</th>{head}</tr>"]
    for key, label in SUMMARY_ROWS.items():
        cells = "".join(f'<td data-run="{_e(v.name)}" data-key="{key}">{_e(fmt(key, v.summary.get(key)))}</td>'
                        for v in views)
        rows.append(f"<tr><td>{_e(label)}</td>{cells}</tr>")
    system = "".join(f"<td>{_e(v.description or v.protocol.get('system', {}).get('kind', ''))}</td>" for v in views)
    rows.append(f"<tr><td>system</td>{system}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _epochs_table(view: RunView) -> str:
    keys = ["train_loss", "train_accuracy", "test_accuracy", "wall_s", *[k for k in COUNTERS if k != "samples_per_s"
                                                                       and any(k in r for r in view.records)]]
    head = "".join(f"<th>{_e(k)}</th>" for k in ["epoch", *keys])
    body = []
    for r in view.records:
        cells = "".join(f'<td data-epoch="{r["epoch"]}" data-key="{k}">{_e(fmt(k, r.get(k)))}</td>' for k in keys)
        body.append(f"<tr><td>{r['epoch']}</td>{cells}</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def _devices_section(view: RunView, margin: float) -> str:
    if not view.devices:
        return "<p>No checkpoint in this run directory: no device view.</p>"
    rows = []
    for dev in view.devices:
        low, high = dev.at_edges(margin)
        window = "unbounded" if dev.low is None or dev.high is None else f"{dev.low:.4g} … {dev.high:.4g} {dev.unit}"
        v = dev.values
        rows.append(
            f"<tr><td>{_e(dev.name)}</td><td>{dev.layer}</td><td>{_e(dev.role)}</td>"
            f'<td>{_e("×".join(map(str, v.shape)))}</td>'
            f"<td>{_e(window)}</td><td>{v.mean():.4g}</td><td>{v.std():.4g}</td>"
            f'<td data-run="{_e(view.name)}" data-device="{_e(dev.name)}" data-key="low">'
            f'{_e(fmt("test_accuracy", low))}</td>'
            f'<td data-run="{_e(view.name)}" data-device="{_e(dev.name)}" data-key="high">'
            f'{_e(fmt("test_accuracy", high))}</td></tr>'
        )
    table = ("<table><tr><th>group</th><th>layer</th><th>role</th><th>shape</th><th>window</th><th>mean</th>"
             f"<th>std</th><th>at low edge</th><th>at high edge</th></tr>{''.join(rows)}</table>")
    parts = [(f"<p>From the checkpoint after epoch {view.checkpoint_epoch}; “at an edge” = within "
              f"{100 * margin:g} % of the window's width.</p>"), table]
    for fig, alt in ((device_histograms_figure(view.devices, margin), "conductance histograms"),
                     (device_maps_figure(view.devices), "conductance maps")):
        if fig is not None:
            parts.append(_img(png_bytes(fig), f"{view.name}: {alt}"))
    return "".join(parts)


def _reproduce(view: RunView) -> str:
    version = view.summary.get("versions", {}).get("aeqprop", __version__)
    path = view.path / "protocol.toml"
    if not path.is_file():  # started from Python (aeqprop.train): run.toml records the settings, not a protocol
        return f"# started from Python: run the same script again (its settings are in {view.path / 'run.toml'})"
    return (f"pip install 'aeqprop=={version}'\n"
            f"aeqprop run {shlex.quote(str(path))} --out {shlex.quote(view.name + '-again')}\n"
            f"# or save the resolved protocol shown above as protocol.toml and: aeqprop run protocol.toml")


def _versions(view: RunView) -> str:
    versions = view.summary.get("versions") or {}
    if not versions:
        return "<p>No versions recorded (summary.json missing).</p>"
    rows = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in versions.items())
    return f"<table><tr><th>package</th><th>version</th></tr>{rows}</table>"


def _status(view: RunView) -> str:
    status = view.summary.get("status", "unknown")
    cls = "ok" if status == "completed" else "bad"
    error = view.summary.get("error")
    return f'<p>Status: <span class="{cls}">{_e(status)}</span>{": " + _e(error) if error else ""}</p>'


def build_report(views: Sequence[RunView], command: str, margin: float = 0.01) -> str:
    """The whole HTML page for ``views``; ``command`` is the command line that produced the report."""
    title = views[0].name if len(views) == 1 else f"{len(views)} runs"
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    body = [f"<h1>aeqprop report: {_e(title)}</h1>",
            (f'<p class="meta">Written {_e(stamp)} by aeqprop {_e(__version__)} '
             f"(Python {_e(platform.python_version())}) with <code>{_e(command)}</code></p>"),
            "<h2>Summary</h2>", _summary_table(views),
            "<h2>Learning curves</h2>",
            _img(png_bytes(learning_curves_figure([(v.name, v.records) for v in views])), "learning curves")]
    costs = counters_figure([(v.name, v.counters()) for v in views])
    if costs is not None:
        body += ["<h2>Costs per epoch</h2>",
                 ("<p>Reads, pulses, solver sweeps and homeostasis iterations as the metrics log recorded "
                  "them.</p>"), _img(png_bytes(costs), "costs per epoch")]
    for view in views:
        body += [f'<h2 id="run-{_e(view.name)}">Run {_e(view.name)}</h2>', _status(view),
                 f"<p>Run directory: <code>{_e(view.path.resolve())}</code></p>",
                 "<h3>Devices</h3>", _devices_section(view, margin),
                 "<details><summary>Epochs</summary>", _epochs_table(view), "</details>",
                 "<details open><summary>Resolved protocol</summary>",
                 f"<pre>{_e(view.protocol_text)}</pre></details>",
                 "<h3>Versions</h3>", _versions(view),
                 "<h3>Reproduce</h3>", f"<pre>{_e(_reproduce(view))}</pre>"]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>aeqprop report: {_e(title)}"
            f"</title><style>{STYLE}</style></head><body>{''.join(body)}<script>{SCRIPT}</script></body></html>\n")
