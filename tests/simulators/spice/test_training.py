"""Training through ngspice: the shipped digits protocol learns, and the same seed on aeqprop's own solver
follows the same trajectory (ngspice's equilibria agree with the solver's, so the updates do too)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from aeqprop.cli import main

from ...conftest import ROOT

PROTOCOL = ROOT / "protocols" / "digits-spice.toml"
BUDGET = ["--set", "data.train_limit=120", "--set", "data.test_limit=100", "--set", "run.epochs=3", "--no-progress"]
#: The resistive solver at a tolerance far below the updates, so that any difference would be ngspice's.
TIGHT = {"spice": [], "resistive": ["--set", "system.tol_v=1e-11", "--set", "system.max_sweeps=100000"]}


@pytest.mark.slow
def test_digits_through_ngspice_learns_like_the_resistive_solver(ngspice, tmp_path, capsys) -> None:
    """3 epochs on 120 digits: far above chance (10 %), the same test accuracy as the resistive solver run from
    the same seed, and the same final conductances to 1e-6 relative: 45 steps of EP through ngspice retrace the
    solver's trajectory."""
    runs = {}
    for kind in ("spice", "resistive"):
        out = tmp_path / kind
        args = ["run", str(PROTOCOL), "--set", f"system.kind={kind}", *TIGHT[kind], "--out", str(out), *BUDGET]
        assert main(args) == 0
        runs[kind] = (json.loads((out / "summary.json").read_text()), np.load(out / "checkpoint.npz"))
    capsys.readouterr()
    spice_summary, spice_ckpt = runs["spice"]
    res_summary, res_ckpt = runs["resistive"]
    assert spice_summary["status"] == "completed"
    assert spice_summary["test_accuracy"] > 0.4
    assert spice_summary["test_accuracy"] == res_summary["test_accuracy"]
    names = [k for k in spice_ckpt.files if "param.g" in k]
    assert names
    for name in names:
        np.testing.assert_allclose(spice_ckpt[name], res_ckpt[name], rtol=1e-6, atol=1e-9, err_msg=name)
