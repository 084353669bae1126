"""What a user meets first: --help, the shipped protocols by name, the end-of-run summary on a terminal."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from aeqprop.cli import main
from aeqprop.cli.protocols import shipped

ROOT = Path(__file__).resolve().parents[1]
SHORT = ["--set", "run.epochs=1", "--set", "data.train_limit=80", "--set", "data.test_limit=40", "--no-progress"]


def test_help_opens_with_a_user_description(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    description = text.split("\n\n")[1]
    assert description.startswith("Train physical learning machines")
    assert "aeqprop run digits" in text and "report" in text and "protocols" in text


def test_protocols_lists_every_shipped_file_on_one_line(capsys) -> None:
    assert main(["protocols"]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = sorted(p.stem for p in (ROOT / "protocols").glob("*.toml"))
    assert [line.split()[0] for line in lines] == files
    digits = next(line for line in lines if line.split()[0] == "digits")
    assert "8x8 digits" in digits


def _run_on_terminal(args: list[str], cwd: Path) -> str:
    """Run the command with stdout on a pseudo-terminal; return what the terminal showed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "aeqprop", *args], stdout=slave, stderr=subprocess.PIPE,
                            cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err.decode()
    return b"".join(chunks).decode().replace("\r\n", "\n")


def test_run_ends_with_a_human_summary_on_a_terminal_and_json_when_piped(tmp_path, tiny_protocol) -> None:
    shown = _run_on_terminal(["run", str(tiny_protocol), "--out", str(tmp_path / "tty"), *SHORT], tmp_path)
    summary = json.loads((tmp_path / "tty" / "summary.json").read_text())
    assert f"done: test accuracy {100 * summary['test_accuracy']:.2f} %" in shown
    assert f"run directory: {tmp_path / 'tty'}" in shown and "aeqprop report" in shown
    assert not any(line.startswith("{") for line in shown.splitlines())

    forced = _run_on_terminal(["run", str(tiny_protocol), "--out", str(tmp_path / "json"), "--json", *SHORT], tmp_path)
    assert json.loads(forced.strip().splitlines()[-1])["epochs"] == 1

    piped = subprocess.run([sys.executable, "-m", "aeqprop", "run", str(tiny_protocol), "--out", str(tmp_path / "p"),
                            *SHORT], check=False, capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert piped.returncode == 0, piped.stderr
    last = json.loads(piped.stdout.strip().splitlines()[-1])
    assert last["test_accuracy"] == json.loads((tmp_path / "p" / "summary.json").read_text())["test_accuracy"]


def test_shipped_protocol_runs_by_name(tmp_path, capsys) -> None:
    assert set(shipped()) >= {"digits", "digits-memristor"}
    assert main(["run", "digits", "--out", str(tmp_path / "d"), *SHORT]) == 0
    assert (tmp_path / "d" / "protocol.toml").read_text() and (tmp_path / "d" / "summary.json").is_file()
    assert main(["validate", "digits-memristor"]) == 0
    assert main(["run", "no-such-protocol", "--out", str(tmp_path / "x")]) == 2
    assert "no-such-protocol: no such protocol file" in capsys.readouterr().err


@pytest.mark.slow
def test_plain_pip_install_runs_shipped_protocols_by_name(tmp_path) -> None:
    """Install the package (a built wheel, not editable) into a folder and run a shipped protocol by name from
    elsewhere; the dependencies come from this environment (offline, no build isolation)."""
    target = tmp_path / "site"
    pip = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                          "--no-index", "--target", str(target), str(ROOT)],
                         check=False, capture_output=True, text=True, timeout=600)
    assert pip.returncode == 0, pip.stderr[-2000:]
    env = {**os.environ, "PYTHONPATH": str(target)}
    cmd = [sys.executable, "-m", "aeqprop"]
    where = subprocess.run([sys.executable, "-c", "import aeqprop; print(aeqprop.__file__)"],
                           check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert where.stdout.startswith(str(target)), where.stdout  # the installed copy, not the checkout
    listed = subprocess.run([*cmd, "protocols"], check=True, capture_output=True, text=True, cwd=tmp_path, env=env)
    assert "digits" in listed.stdout.split()
    res = subprocess.run([*cmd, "run", "digits", "--out", str(tmp_path / "run"), *SHORT],
                         check=False, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert json.loads((tmp_path / "run" / "summary.json").read_text())["status"] == "completed"
