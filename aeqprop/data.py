"""Data sets from files or from packages that ship them. Nothing here ever downloads.

* ``digits``: scikit-learn's ``load_digits`` (1,797 8×8 images shipped in the wheel), stratified split.
* ``iris``: scikit-learn's ``load_iris`` (150 samples, 4 features, 3 classes), min-max scaled, stratified split:
  small enough for a rig of a few SMUs and a switch matrix.
* ``mnist``, ``fashion-mnist``, ``kmnist``: IDX files (gzip or raw) under ``<root>/<name>/`` with the
  standard names; the root comes from the protocol (``data.root``) or the ``AEQPROP_DATA`` variable.

Features are scaled to [0, 1]; labels are integers.
"""

from __future__ import annotations

import gzip
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .system import AeqpropError

#: (features, classes) of each known data set: lets ``validate`` check sizes without loading anything.
SHAPES: dict[str, tuple[int, int]] = {
    "digits": (64, 10),
    "iris": (4, 3),
    "mnist": (784, 10),
    "fashion-mnist": (784, 10),
    "kmnist": (784, 10),
}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class DataError(AeqpropError):
    """A data file is missing or malformed."""


@dataclass(frozen=True)
class Dataset:
    """Train and test splits, features in [0, 1] with shape (n, features), integer labels."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]

    def limit(self, train: int | None, test: int | None) -> Dataset:
        """The first ``train`` / ``test`` samples (for quick runs and tests)."""
        return Dataset(
            self.name, self.x_train[:train], self.y_train[:train], self.x_test[:test], self.y_test[:test],
            self.n_classes,
        )


def one_hot(labels: np.ndarray, n_classes: int, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Targets (n, n_classes): ``high`` at the label, ``low`` elsewhere."""
    out = np.full((labels.shape[0], n_classes), low, dtype=np.float64)
    out[np.arange(labels.shape[0]), labels] = high
    return out


def _stratified(name: str, x: np.ndarray, y: np.ndarray, test_fraction: float, split_seed: int) -> Dataset:
    from sklearn.model_selection import train_test_split

    x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=split_seed)
    return Dataset(name, x_tr, y_tr, x_te, y_te, int(y.max()) + 1)


def load_digits(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's 8×8 digits with a stratified, seeded train/test split."""
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    return _stratified("digits", bunch.data / 16.0, bunch.target.astype(np.int64), test_fraction, split_seed)


def load_iris(test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """scikit-learn's iris, each feature min-max scaled to [0, 1], stratified and seeded split."""
    from sklearn.datasets import load_iris as sk_load_iris

    bunch = sk_load_iris()
    x = bunch.data
    x = (x - x.min(axis=0)) / (x.max(axis=0) - x.min(axis=0))
    return _stratified("iris", x, bunch.target.astype(np.int64), test_fraction, split_seed)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX array (gzip-compressed or raw, told apart by the gzip magic bytes)."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(f"{path}: IDX header says {shape} ({expected} bytes) but the file has {len(raw)} bytes")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> None:
    """Write ``array`` (uint8) as an IDX file; gzip when the name ends in ``.gz`` (tests, tiny data sets)."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    payload = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape) + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        payload = gzip.compress(payload)
    path.write_bytes(payload)


def data_root(configured: str | None) -> Path:
    """The data root: the protocol's ``data.root``, else ``$AEQPROP_DATA``."""
    root = configured or os.environ.get("AEQPROP_DATA")
    if not root:
        raise DataError("no data root: set data.root in the protocol or the AEQPROP_DATA environment variable")
    return Path(root).expanduser()


def _find(folder: Path, stem: str) -> Path:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    raise DataError(f"missing data file: {folder / stem}[.gz]")


def load_idx_dataset(name: str, root: str | Path) -> Dataset:
    """An MNIST-format data set from ``<root>/<name>/`` (standard file names, gzip or raw)."""
    folder = Path(root) / name
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        n_x, n_y = arrays[f"x_{split}"].shape[0], arrays[f"y_{split}"].shape[0]
        if n_x != n_y:
            raise DataError(f"{folder}: {n_x} {split} images but {n_y} labels")
    flat = {k: v.reshape(v.shape[0], -1).astype(np.float64) / 255.0 for k, v in arrays.items() if k.startswith("x")}
    return Dataset(
        name, flat["x_train"], arrays["y_train"].astype(np.int64), flat["x_test"],
        arrays["y_test"].astype(np.int64), SHAPES.get(name, (0, 10))[1],
    )


def load_dataset(name: str, root: str | None = None, test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """Load a data set by name (see :data:`SHAPES`)."""
    if name == "digits":
        return load_digits(test_fraction, split_seed)
    if name == "iris":
        return load_iris(test_fraction, split_seed)
    if name in SHAPES:
        return load_idx_dataset(name, data_root(root))
    raise DataError(f"unknown data set {name!r}; known: {', '.join(SHAPES)}")
