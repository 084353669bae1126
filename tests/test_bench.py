"""``aeqprop bench fidelity``: the table for a protocol file, its JSON form, and its one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from aeqprop.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMOOTH = ROOT / "protocols" / "fidelity-smooth.toml"


def test_bench_fidelity_prints_every_estimator_and_order(capsys) -> None:
    """The default table covers every estimator the smooth system supports, at three betas, with orders."""
    assert main(["bench", "fidelity", str(SMOOTH), "--samples", "2"]) == 0
    out = capsys.readouterr().out
    for label in ("one-sided", "centered", "stencil", "cauchy-4", "cauchy-8"):
        assert sum(line.startswith(label + " ") for line in out.splitlines()) == 3
    assert "empirical bias order" in out and "cauchy-8 p=" in out


def test_bench_fidelity_json_orders_follow_the_estimators(capsys) -> None:
    """JSON output: the centered estimator's error is below the one-sided one's at every beta."""
    assert main(["bench", "fidelity", str(SMOOTH), "--json", "--estimator", "one-sided",
                 "--estimator", "centered", "--beta", "0.05", "--beta", "0.025"]) == 0
    data = json.loads(capsys.readouterr().out)
    errors = {(p["estimator"], p["beta"]): p["relative_error"] for p in data["points"]}
    for beta in (0.05, 0.025):
        assert errors[("centered", beta)] < errors[("one-sided", beta)] / 5
    assert 1.5 < data["bias_orders"]["centered"] < 2.5


def test_bench_refuses_cauchy_on_a_diode_network(capsys) -> None:
    """Asking for a complex-nudge estimator on a system without capability 'complex' is a one-line error."""
    protocol = ROOT / "protocols" / "digits.toml"
    assert main(["bench", "fidelity", str(protocol), "--estimator", "cauchy-4"]) == 2
    err = capsys.readouterr().err
    assert "needs capabilities ['complex']" in err and "\n" not in err.strip()
