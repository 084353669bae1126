"""Data loaders read real files (IDX, gzip or raw) and packaged data; nothing downloads."""

from __future__ import annotations

import gzip
import hashlib

import numpy as np
import pytest

from aeqprop.data import (
    IDX_FILES,
    DataError,
    load_dataset,
    load_digits,
    load_idx_dataset,
    one_hot,
    read_idx,
    write_idx,
)

from .conftest import SHARED_DATA


def _write_tiny_mnist(folder, n_train=12, n_test=5, compress=True):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    suffix = ".gz" if compress else ""
    arrays = {
        "x_train": rng.integers(0, 256, (n_train, 28, 28)), "y_train": rng.integers(0, 10, n_train),
        "x_test": rng.integers(0, 256, (n_test, 28, 28)), "y_test": rng.integers(0, 10, n_test),
    }
    for key, stem in IDX_FILES.items():
        write_idx(folder / f"{stem}{suffix}", arrays[key])
    return arrays


@pytest.mark.parametrize("compress", [True, False], ids=["gzip", "raw"])
def test_idx_dataset_roundtrip(tmp_path, compress) -> None:
    """A tiny MNIST-format folder loads with pixels scaled to [0, 1] and labels intact."""
    arrays = _write_tiny_mnist(tmp_path / "mnist", compress=compress)
    data = load_idx_dataset("mnist", tmp_path)
    assert data.x_train.shape == (12, 784) and data.x_test.shape == (5, 784)
    np.testing.assert_allclose(data.x_train * 255, arrays["x_train"].reshape(12, -1))
    np.testing.assert_array_equal(data.y_test, arrays["y_test"])
    assert data.n_classes == 10


def test_missing_file_is_one_line_naming_it(tmp_path) -> None:
    _write_tiny_mnist(tmp_path / "mnist")
    (tmp_path / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError) as err:
        load_idx_dataset("mnist", tmp_path)
    message = str(err.value)
    assert "\n" not in message and "t10k-labels-idx1-ubyte" in message and str(tmp_path) in message


def test_truncated_idx_is_rejected(tmp_path) -> None:
    path = tmp_path / "x.idx"
    write_idx(path, np.zeros((3, 4), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(DataError, match="IDX header says"):
        read_idx(path)


def test_data_root_from_environment(tmp_path, monkeypatch) -> None:
    """AEQPROP_DATA points at a folder holding <name>/; without it the error says what to set."""
    _write_tiny_mnist(tmp_path / "kmnist")
    monkeypatch.setenv("AEQPROP_DATA", str(tmp_path))
    assert load_dataset("kmnist").x_train.shape == (12, 784)
    monkeypatch.delenv("AEQPROP_DATA")
    with pytest.raises(DataError, match="AEQPROP_DATA"):
        load_dataset("kmnist")


def test_digits_split_is_stratified_and_seeded() -> None:
    a, b, c = load_digits(0.2, 0), load_digits(0.2, 0), load_digits(0.2, 1)
    assert a.x_test.shape == (360, 64) and a.x_train.shape == (1437, 64)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.y_test, c.y_test)
    counts = np.bincount(a.y_test, minlength=10) / len(a.y_test)
    overall = np.bincount(np.concatenate([a.y_train, a.y_test]), minlength=10) / 1797
    assert np.abs(counts - overall).max() < 0.01
    assert 0.0 <= a.x_train.min() and a.x_train.max() <= 1.0


def test_one_hot_levels() -> None:
    t = one_hot(np.array([2, 0]), 3, low=-1.0, high=2.0)
    np.testing.assert_array_equal(t, [[-1, -1, 2], [2, -1, -1]])


MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


@pytest.mark.skipif(not (SHARED_DATA / "mnist").is_dir(), reason="no MNIST IDX files beside the checkout")
def test_shared_mnist_files_load_and_match_published_checksums() -> None:
    """The offline MNIST copy is the real one: checksums of the uncompressed files, then shapes."""
    for stem, md5 in MNIST_MD5.items():
        raw = gzip.decompress((SHARED_DATA / "mnist" / f"{stem}.gz").read_bytes())
        assert hashlib.md5(raw).hexdigest() == md5
    data = load_idx_dataset("mnist", SHARED_DATA)
    assert data.x_train.shape == (60000, 784) and data.x_test.shape == (10000, 784)
    assert set(np.unique(data.y_train)) == set(range(10))


def test_iris_is_scaled_and_stratified() -> None:
    data = load_dataset("iris")
    assert data.x_train.shape == (120, 4) and data.x_test.shape == (30, 4) and data.n_classes == 3
    assert data.x_train.min() >= 0.0 and max(data.x_train.max(), data.x_test.max()) == 1.0
    np.testing.assert_array_equal(np.bincount(data.y_test), [10, 10, 10])
