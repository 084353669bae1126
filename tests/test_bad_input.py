"""Bad protocol and data files never reach a traceback or a silent NaN run.

Each mutated file must give one line on stderr naming the file (and the field or record) with the reason,
exit status 2, and leave nothing behind: ``validate`` refuses what it can see, ``run`` refuses the rest
(data files) before any run directory exists.
"""

from __future__ import annotations

import gzip
import struct
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from aeqprop.cli import main
from aeqprop.data import IDX_FILES

from .conftest import ROOT, TINY_PROTOCOL

RIG = (ROOT / "protocols" / "rig-crossbar.toml").read_text()
SMU_RIG = (ROOT / "protocols" / "iris-smu-rig.toml").read_text()
AEQPROP = (ROOT / "protocols" / "digits-aeqprop.toml").read_text()


def _set(base: str, key: str, value: object) -> str:
    data = tomllib.loads(base)
    *sections, last = key.split(".")
    node = data
    for part in sections:
        node = node.setdefault(part, {})
    node[last] = value
    return tomli_w.dumps(data)


#: (id, protocol text, what the one-line error must mention)
MUTATIONS: list[tuple[str, str | bytes, str]] = [
    ("invalid-utf8", b"version = 1\n[system]\nkind = \"resistive\xff\xfe\"\n", "not UTF-8"),
    ("deep-array", "x = " + "[" * 20000 + "]" * 20000, "nested too deeply"),
    ("deep-table", "x = " + "{a=" * 3000 + "1" + "}" * 3000, "nested too deeply"),
    ("not-toml", "[system\nkind = 3", "invalid TOML"),
    ("empty", "", "system: Field required"),
    ("system-scalar", "system = 3\n", "system"),
    ("kind-number", _set(TINY_PROTOCOL, "system.kind", 3), "system.kind: must be a string"),
    ("kind-unknown", _set(TINY_PROTOCOL, "system.kind", "quantum"), "unknown system kind 'quantum'"),
    ("version-2", _set(TINY_PROTOCOL, "version", 2), "version"),
    ("hidden-2**64", _set(TINY_PROTOCOL, "system.hidden", [16, 2**64]), "integer out of range"),
    ("hidden-2**40", _set(TINY_PROTOCOL, "system.hidden", [16, 2**40]), "system.hidden.1"),
    ("hidden-zero", _set(TINY_PROTOCOL, "system.hidden", [0]), "system.hidden.0"),
    ("hidden-negative", _set(TINY_PROTOCOL, "system.hidden", [-2]), "system.hidden.0"),
    ("hidden-int", _set(TINY_PROTOCOL, "system.hidden", 16), "system.hidden"),
    ("hidden-bool", _set(TINY_PROTOCOL, "system.hidden", [True, 2]), "system.hidden.0"),
    ("inputs-zero", _set(TINY_PROTOCOL, "system.inputs", 0), "system.inputs"),
    ("inputs-float", _set(TINY_PROTOCOL, "system.inputs", 64.5), "system.inputs"),
    ("inputs-string", _set(TINY_PROTOCOL, "system.inputs", "64"), "system.inputs"),
    ("gain-nan", _set(TINY_PROTOCOL, "system.input_gain", float("nan")), "system.input_gain"),
    ("gain-inf", _set(TINY_PROTOCOL, "system.input_gain", float("inf")), "system.input_gain"),
    ("g-max-inf", _set(TINY_PROTOCOL, "system.g_max", float("inf")), "system.g_max"),
    ("tol-bool", _set(TINY_PROTOCOL, "system.tol_v", True), "system.tol_v"),
    ("sweeps-bool", _set(TINY_PROTOCOL, "system.max_sweeps", True), "system.max_sweeps"),
    ("beta-nan", _set(TINY_PROTOCOL, "algorithm.beta", float("nan")), "algorithm.beta"),
    ("beta-inf", _set(TINY_PROTOCOL, "algorithm.beta", float("-inf")), "algorithm.beta"),
    ("beta-bool", _set(TINY_PROTOCOL, "algorithm.beta", True), "algorithm.beta"),
    ("beta-zero", _set(TINY_PROTOCOL, "algorithm.beta", 0.0), "beta must be nonzero"),
    ("reads-huge", _set(TINY_PROTOCOL, "algorithm.reads", 2**40), "algorithm.reads"),
    ("points-huge", _set(TINY_PROTOCOL, "algorithm.points", 10**9), "algorithm.points"),
    ("estimator-unknown", _set(TINY_PROTOCOL, "algorithm.estimator", "psychic"), "algorithm.estimator"),
    ("lr-negative", _set(TINY_PROTOCOL, "optimizer.lr", -0.05), "optimizer.lr"),
    ("lr-zero", _set(TINY_PROTOCOL, "optimizer.lr", 0.0), "optimizer.lr"),
    ("lr-list-negative", _set(TINY_PROTOCOL, "optimizer.lr", [0.1, -1.0]), "optimizer.lr"),
    ("lr-nan", _set(TINY_PROTOCOL, "optimizer.lr", float("nan")), "optimizer.lr"),
    ("lr-bool", _set(TINY_PROTOCOL, "optimizer.lr", True), "optimizer.lr"),
    ("lr-layers", _set(TINY_PROTOCOL, "optimizer.lr", [0.1, 0.1, 0.1]), "optimizer.lr"),
    ("decay-inf", _set(TINY_PROTOCOL, "optimizer.decay", float("inf")), "optimizer.decay"),
    ("epochs-bool", _set(TINY_PROTOCOL, "run.epochs", True), "run.epochs"),
    ("epochs-string", _set(TINY_PROTOCOL, "run.epochs", "3"), "run.epochs"),
    ("epochs-2**64", _set(TINY_PROTOCOL, "run.epochs", 2**64), "integer out of range"),
    ("batch-false", _set(TINY_PROTOCOL, "run.batch_size", False), "run.batch_size"),
    ("seed-negative", _set(TINY_PROTOCOL, "run.seed", -1), "run.seed"),
    ("split-seed-huge", _set(TINY_PROTOCOL, "data.split_seed", 2**40), "data.split_seed"),
    ("fraction-nan", _set(TINY_PROTOCOL, "data.test_fraction", float("nan")), "data.test_fraction"),
    ("targets-swapped", _set(_set(TINY_PROTOCOL, "data.target_low", 1.0), "data.target_high", 0.0), "target_low"),
    ("target-inf", _set(TINY_PROTOCOL, "data.target_high", float("inf")), "data.target_high"),
    ("data-unknown", _set(TINY_PROTOCOL, "data.name", "cifar"), "unknown data set 'cifar'"),
    ("data-name-and-path", _set(TINY_PROTOCOL, "data.path", "x.npz"), "not both"),
    ("data-path-missing", _set(tomli_w.dumps({k: v for k, v in tomllib.loads(TINY_PROTOCOL).items() if k != "data"}),
                               "data.path", "/nonexistent/x.npz"), "no such data file"),
    ("limit-zero", _set(TINY_PROTOCOL, "data.train_limit", 0), "data.train_limit"),
    ("unknown-field", _set(TINY_PROTOCOL, "system.hiden", [16]), "system.hiden: unknown field"),
    ("aeqprop-eps-nan", _set(AEQPROP, "algorithm.eps", float("nan")), "algorithm.eps"),
    ("aeqprop-eps-negative", _set(AEQPROP, "algorithm.eps", -0.1), "algorithm.eps"),
    ("aeqprop-tolerance-inf", _set(AEQPROP, "algorithm.homeostasis.tolerance", float("inf")),
     "algorithm.homeostasis.tolerance"),
    ("rig-pulse-width-zero", _set(RIG, "system.pulse_width_s", 0.0), "system.pulse_width_s"),
    ("rig-settle-1e308", _set(RIG, "system.settle_time_s", 1e308), "system.settle_time_s"),
    ("rig-timeout-1e308", _set(RIG, "system.timeout_s", 1e308), "system.timeout_s"),
    ("rig-poll-nan", _set(RIG, "system.settle_poll_s", float("nan")), "system.settle_poll_s"),
    ("rig-max-voltage-inf", _set(RIG, "system.limits.max_voltage_v", float("inf")), "system.limits.max_voltage_v"),
    ("rig-max-current-bool", _set(RIG, "system.limits.max_current_a", True), "system.limits.max_current_a"),
    ("rig-channels-negative", _set(RIG, "system.input_channels", [-1] * 64), "input_channels"),
    ("rig-batch-2", _set(RIG, "run.batch_size", 2), "at most 1"),
    ("smu-settle-1e308", _set(SMU_RIG, "system.settle_time_s", 1e308), "system.settle_time_s"),
    ("smu-pulse-width-zero", _set(SMU_RIG, "system.pulse_width_s", 0.0), "system.pulse_width_s"),
    ("smu-hidden-2**64", _set(SMU_RIG, "system.hidden", [2**64]), "integer out of range"),
]


@pytest.mark.parametrize(("text", "reason"), [m[1:] for m in MUTATIONS], ids=[m[0] for m in MUTATIONS])
def test_bad_protocol_is_one_line_exit_2_nothing_written(tmp_path, capsys, text, reason) -> None:
    protocol = tmp_path / "bad.toml"
    protocol.write_bytes(text if isinstance(text, bytes) else text.encode())
    for command in (["validate", str(protocol)], ["run", str(protocol), "--out", str(tmp_path / "out")]):
        assert main(command) == 2, command
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(f"aeqprop: error: {protocol}"), err
        assert reason in err, err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.toml"]


def test_directory_as_protocol(tmp_path, capsys) -> None:
    assert main(["validate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a directory" in err


# --- data files -----------------------------------------------------------------------------------------------

def _idx(array: np.ndarray, code: int = 0x08) -> bytes:
    dtype = {0x08: np.uint8, 0x09: np.int8, 0x0D: ">f4"}[code]
    array = np.ascontiguousarray(array, dtype=dtype)
    return bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()


def _mnist(folder: Path, n: int = 12) -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {
        "x_train": _idx(rng.integers(0, 256, (n, 28, 28))), "y_train": _idx(np.arange(n) % 10),
        "x_test": _idx(rng.integers(0, 256, (n, 28, 28))), "y_test": _idx(np.arange(n) % 10),
    }
    folder.mkdir(parents=True)
    return files


def _write(folder: Path, files: dict[str, bytes]) -> None:
    for key, payload in files.items():
        (folder / IDX_FILES[key]).write_bytes(payload)


def _truncate(b: bytes) -> bytes:
    return b[: len(b) // 2]


NAN_IMAGES = np.zeros((12, 28, 28), dtype=np.float32)
NAN_IMAGES[3, 4, 5] = np.nan

#: (id, which file, how it is broken, what the message must say)
DATA_MUTATIONS = [
    ("truncated", "x_train", _truncate, "IDX header says"),
    ("truncated-header", "y_train", lambda b: b[:6], "IDX header truncated"),
    ("empty-file", "x_test", lambda b: b"", "not an IDX file"),
    ("corrupt-gzip", "x_train", lambda b: b"\x1f\x8b" + b"\x00garbage" * 10, "cannot read"),
    ("truncated-gzip", "x_train", lambda b: gzip.compress(b)[:40], "cannot read"),
    ("bad-magic", "y_test", lambda b: b"\x12\x34" + b[2:], "not an IDX file"),
    ("wrong-image-size", "x_train", lambda b: _idx(np.zeros((12, 10, 10))), "784"),
    ("zero-samples", "x_test", lambda b: _idx(np.zeros((0, 28, 28))), "neither zero"),
    ("nan-pixel", "x_train", lambda b: _idx(NAN_IMAGES, 0x0D), "non-finite"),
    ("label-negative", "y_train", lambda b: _idx(np.array([-1] + [0] * 11), 0x09), "label -1"),
    ("label-too-big", "y_test", lambda b: _idx(np.array([10] + [0] * 11)), "label 10"),
    ("label-float", "y_train", lambda b: _idx(np.zeros(12), 0x0D), "labels must be integers"),
    ("label-count", "y_train", lambda b: _idx(np.zeros(11)), "one label per sample"),
    ("labels-as-images", "x_train", lambda b: _idx(np.zeros(12)), "at least 2 dimensions"),
]


@pytest.mark.parametrize(("key", "breaks", "reason"), [m[1:] for m in DATA_MUTATIONS],
                         ids=[m[0] for m in DATA_MUTATIONS])
def test_bad_idx_file_is_one_line_exit_2_nothing_written(tmp_path, capsys, key, breaks, reason) -> None:
    folder = tmp_path / "data" / "mnist"
    files = _mnist(folder)
    files[key] = breaks(files[key])
    _write(folder, files)
    protocol = tmp_path / "mnist.toml"
    text = _set(_set(TINY_PROTOCOL, "data.name", "mnist"), "data.root", str(tmp_path / "data"))
    protocol.write_text(_set(_set(text, "system.inputs", 784), "system.hidden", [4]))
    assert main(["run", str(protocol), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(folder) in err and reason in err, err
    assert not (tmp_path / "out").exists()


NPZ_MUTATIONS = [
    ("missing-key", {"x_test": None}, "missing arrays x_test"),
    ("nan", {"x_train": np.full((20, 4), np.nan)}, "non-finite"),
    ("float-labels", {"y_train": np.zeros(20)}, "non-empty 1-D integer array"),
    ("negative-label", {"y_test": -np.ones(9, dtype=int)}, "negative label"),
    ("objects", {"x_train": np.array([[None]] * 20, dtype=object)}, "numeric array"),
    ("mismatched-features", {"x_test": np.zeros((9, 5))}, "features"),
    ("one-dimensional", {"x_train": np.zeros(20)}, "x_train must be a numeric array"),
]


@pytest.mark.parametrize(("change", "reason"), [m[1:] for m in NPZ_MUTATIONS], ids=[m[0] for m in NPZ_MUTATIONS])
def test_bad_npz_file_is_one_line_exit_2_nothing_written(tmp_path, capsys, change, reason) -> None:
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((20, 4)), "y_train": rng.integers(0, 3, 20), "x_test": rng.random((9, 4)),
              "y_test": np.arange(9) % 3}
    arrays.update(change)
    np.savez(tmp_path / "data.npz", **{k: v for k, v in arrays.items() if v is not None})
    base = {k: v for k, v in tomllib.loads(TINY_PROTOCOL).items() if k != "data"}
    text = _set(_set(_set(tomli_w.dumps(base), "data.path", str(tmp_path / "data.npz")), "system.inputs", 4),
                "system.outputs", 3)
    protocol = tmp_path / "npz.toml"
    protocol.write_text(text)
    codes = [main(["validate", str(protocol)]), main(["run", str(protocol), "--out", str(tmp_path / "out")])]
    err = capsys.readouterr().err
    assert 2 in codes and codes[1] == 2
    assert all(line.startswith("aeqprop: error:") for line in err.splitlines()) and reason in err, err
    assert not (tmp_path / "out").exists()


def test_garbage_npz_file(tmp_path, capsys) -> None:
    (tmp_path / "data.npz").write_bytes(b"\xff" * 100)
    base = {k: v for k, v in tomllib.loads(TINY_PROTOCOL).items() if k != "data"}
    protocol = tmp_path / "npz.toml"
    protocol.write_text(_set(tomli_w.dumps(base), "data.path", str(tmp_path / "data.npz")))
    assert main(["validate", str(protocol)]) == 2
    assert "not an .npz archive" in capsys.readouterr().err
