"""Data sets from files or from packages that ship them. Nothing here ever downloads.

* ``digits``: scikit-learn's ``load_digits`` (1,797 8×8 images shipped in the wheel), stratified split.
* ``iris``: scikit-learn's ``load_iris`` (150 samples, 4 features, 3 classes), min-max scaled, stratified split:
  small enough for a rig of a few SMUs and a switch matrix.
* ``mnist``, ``fashion-mnist``, ``kmnist``: IDX files (gzip or raw) under ``<root>/<name>/`` with the
  standard names; the root comes from the protocol (``data.root``) or the ``AEQPROP_DATA`` variable.
* a user file (``data.path``): an ``.npz`` archive holding ``x_train``, ``y_train``, ``x_test``, ``y_test``.

Each named set is a :class:`DataSource` registered in the entry-point group ``aeqprop.datasets`` (a package
may add its own). Every loaded set is checked by :func:`check_dataset` before it is used: finite features,
integer labels within the classes, matching counts, no empty split. Built-in features are scaled to [0, 1].
"""

from __future__ import annotations

import gzip
import os
import struct
import zipfile
import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from pydantic import Field, field_validator, model_validator

from .settings import Section
from .system import AeqpropError

#: (features, classes) of each built-in data set: lets ``validate`` check sizes without loading anything.
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
_IDX_DTYPES: dict[int, type | str] = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


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
    """Read an IDX array (gzip-compressed or raw, told apart by the gzip magic bytes).

    Every way a file can be broken (unreadable, corrupt or truncated gzip, bad magic, header and size that
    disagree) is a :class:`DataError` naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path}: not an IDX file (magic {raw[:4].hex()})")
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: IDX header truncated or without dimensions")
    shape = struct.unpack(f">{ndim}i", raw[4:header])
    if any(n < 0 for n in shape):
        raise DataError(f"{path}: IDX header has a negative size {shape}")
    expected = header + int(np.prod(shape, dtype=object)) * dtype.itemsize
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


def load_idx_dataset(name: str, root: str | Path, classes: int | None = None) -> Dataset:
    """An MNIST-format data set from ``<root>/<name>/`` (standard file names, gzip or raw)."""
    folder = Path(root) / name
    arrays = {key: read_idx(_find(folder, stem)) for key, stem in IDX_FILES.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim < 2 or labels.ndim != 1:
            raise DataError(f"{folder}: {split} images must have at least 2 dimensions and labels 1, got "
                            f"{images.shape} and {labels.shape}")
        if images.shape[0] == 0:
            raise DataError(f"{folder}: x_{split} must be (samples, features) with neither zero, got "
                            f"{images.shape}")
    flat = {k: v.reshape(v.shape[0], -1).astype(np.float64) / 255.0 for k, v in arrays.items() if k.startswith("x")}
    n_classes = classes if classes is not None else SHAPES.get(name, (0, 10))[1]
    return check_dataset(Dataset(name, flat["x_train"], arrays["y_train"], flat["x_test"], arrays["y_test"],
                                 n_classes), str(folder))


def check_dataset(data: Dataset, where: str) -> Dataset:
    """Return ``data`` with int64 labels after checking it, or raise a one-line :class:`DataError`.

    Checked: 2-D finite float features, the same feature count in both splits, no empty split, one integer
    label per sample, every label in ``[0, n_classes)``.
    """
    if data.n_classes < 1:
        raise DataError(f"{where}: a data set needs at least one class, got {data.n_classes}")
    labels = {}
    for split in ("train", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise DataError(f"{where}: x_{split} must be (samples, features) with neither zero, got {x.shape}")
        if x.dtype.kind not in "fiub":
            raise DataError(f"{where}: x_{split} must be numbers, got dtype {x.dtype}")
        if not np.all(np.isfinite(x)):
            bad = int(np.argwhere(~np.isfinite(x))[0][0])
            raise DataError(f"{where}: x_{split} sample {bad} holds a non-finite value (nan or inf)")
        if y.ndim != 1 or y.shape[0] != x.shape[0]:
            raise DataError(f"{where}: y_{split} must hold one label per sample ({x.shape[0]}), got shape {y.shape}")
        if y.dtype.kind not in "iu":
            raise DataError(f"{where}: y_{split} labels must be integers, got dtype {y.dtype}")
        out = (y < 0) | (y >= data.n_classes)
        if np.any(out):
            i = int(np.argmax(out))
            raise DataError(f"{where}: y_{split} label {int(y[i])} at sample {i} is outside 0..{data.n_classes - 1}")
        labels[split] = y.astype(np.int64)
    if data.x_train.shape[1] != data.x_test.shape[1]:
        raise DataError(f"{where}: x_train has {data.x_train.shape[1]} features but x_test {data.x_test.shape[1]}")
    return Dataset(data.name, data.x_train.astype(np.float64, copy=False), labels["train"],
                   data.x_test.astype(np.float64, copy=False), labels["test"], data.n_classes)


class DataConfig(Section):
    """``[data]``: which data set (a registered name or a user ``.npz`` file) and how targets are encoded."""

    name: str | None = Field(default=None, description="A registered data set (aeqprop datasets); default digits.")
    path: str | None = Field(default=None, description="A user .npz file with x_train, y_train, x_test, y_test "
                             "(instead of name); relative paths are read from the working directory.")
    root: str | None = Field(default=None, description="Folder holding <name>/ (default: $AEQPROP_DATA).")
    test_fraction: float = Field(default=0.2, gt=0, lt=1, description="digits and iris: held-out fraction.")
    split_seed: int = Field(default=0, ge=0, le=2**32 - 1, description="digits and iris: seed of the stratified split.")
    train_limit: int | None = Field(default=None, gt=0, description="Use only the first N training samples.")
    test_limit: int | None = Field(default=None, gt=0, description="Use only the first N test samples.")
    target_low: float = 0.0
    target_high: float = 1.0

    @field_validator("name")
    @classmethod
    def _known(cls, name: str | None) -> str | None:
        from .registry import DATASETS, RegistryError, entry

        if name is not None:
            try:
                entry(DATASETS, name)
            except RegistryError as exc:
                raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.name is not None and self.path is not None:
            raise ValueError("give data.name or data.path, not both")
        if self.name is None and self.path is None:
            self.name = "digits"
        if self.target_low >= self.target_high:
            raise ValueError(f"target_low ({self.target_low}) must be below target_high ({self.target_high})")
        return self

    @property
    def label(self) -> str:
        """How messages name the data set."""
        return self.path if self.path is not None else str(self.name)

    def source(self) -> DataSource:
        """The :class:`DataSource` this section names."""
        if self.path is not None:
            return NpzSource(self.path)
        from .registry import data_source

        return data_source(str(self.name))()


class DataSource(ABC):
    """A data set a protocol can name: register a subclass in the entry-point group ``aeqprop.datasets``.

    ``shape`` lets ``validate`` check the system's sizes without loading the whole set; ``load`` returns the
    set (it is then passed through :func:`check_dataset`). Both read their options from the ``[data]``
    section (``root``, ``test_fraction``, ``split_seed``); neither may download anything.
    """

    #: One line shown by ``aeqprop systems``.
    description: ClassVar[str] = ""

    @abstractmethod
    def shape(self, config: DataConfig) -> tuple[int, int]:
        """(features, classes)."""

    @abstractmethod
    def load(self, config: DataConfig) -> Dataset:
        """Train and test splits, features (n, features), integer labels."""


def source_problems(cls: Any, base: type, name: str) -> list[str]:
    """What is wrong with ``cls`` as a data source registered under ``name`` (checked when it is loaded)."""
    if not (isinstance(cls, type) and issubclass(cls, base)):
        return [f"is {cls!r}, not a subclass of aeqprop.data.DataSource"]
    problems = []
    missing = sorted(getattr(cls, "__abstractmethods__", ()))
    if missing:
        problems.append(f"does not implement {', '.join(missing)}")
    description = getattr(cls, "description", None)
    if not isinstance(description, str) or not description.strip() or "\n" in description.strip():
        problems.append("needs a one-line class attribute 'description'")
    return problems


class Digits(DataSource):
    description = "scikit-learn's 8x8 handwritten digits (1,797 images, 64 features, 10 classes)"

    def shape(self, config: DataConfig) -> tuple[int, int]:
        return SHAPES["digits"]

    def load(self, config: DataConfig) -> Dataset:
        return load_digits(config.test_fraction, config.split_seed)


class Iris(DataSource):
    description = "scikit-learn's iris (150 samples, 4 features, 3 classes), min-max scaled"

    def shape(self, config: DataConfig) -> tuple[int, int]:
        return SHAPES["iris"]

    def load(self, config: DataConfig) -> Dataset:
        return load_iris(config.test_fraction, config.split_seed)


class IdxSource(DataSource):
    """An MNIST-format set in ``<data.root>/<folder>/`` (28x28 images, 10 classes)."""

    folder: ClassVar[str] = ""

    def shape(self, config: DataConfig) -> tuple[int, int]:
        return SHAPES[self.folder]

    def load(self, config: DataConfig) -> Dataset:
        data = load_idx_dataset(self.folder, data_root(config.root))
        features = SHAPES[self.folder][0]
        if data.n_features != features:
            raise DataError(f"{data_root(config.root) / self.folder}: images have {data.n_features} pixels, "
                            f"{self.folder} has {features}")
        return data


class Mnist(IdxSource):
    description = "MNIST handwritten digits from IDX files under data.root (784 features, 10 classes)"
    folder = "mnist"


class FashionMnist(IdxSource):
    description = "Fashion-MNIST from IDX files under data.root (784 features, 10 classes)"
    folder = "fashion-mnist"


class Kmnist(IdxSource):
    description = "Kuzushiji-MNIST from IDX files under data.root (784 features, 10 classes)"
    folder = "kmnist"


class NpzSource(DataSource):
    """A user file: an ``.npz`` archive with ``x_train``, ``y_train``, ``x_test``, ``y_test``.

    Classes are ``max(label) + 1`` over both splits; ``shape`` reads the labels and only the headers of the
    feature arrays.
    """

    description = "a user .npz file (data.path) with x_train, y_train, x_test, y_test"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path).expanduser()

    def _open(self) -> zipfile.ZipFile:
        if not self.path.is_file():
            raise DataError(f"{self.path}: no such data file")
        try:
            archive = zipfile.ZipFile(self.path)
        except (OSError, zipfile.BadZipFile) as exc:
            raise DataError(f"{self.path}: not an .npz archive: {exc}") from None
        missing = [k for k in NPZ_KEYS if f"{k}.npy" not in archive.namelist()]
        if missing:
            archive.close()
            raise DataError(f"{self.path}: missing arrays {', '.join(missing)} (an .npz needs {', '.join(NPZ_KEYS)})")
        return archive

    def _array(self, archive: zipfile.ZipFile, key: str, header_only: bool = False) -> Any:
        try:
            with archive.open(f"{key}.npy") as fh:
                version = np.lib.format.read_magic(fh)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, dtype = read_header(fh)
                if key.startswith("x") and (len(shape) < 2 or dtype.kind not in "fiub"):
                    raise DataError(f"{self.path}: {key} must be a numeric array of shape (samples, features...), "
                                    f"got dtype {dtype} shape {shape}")
                if header_only:
                    return shape
                fh.seek(0)
                return np.lib.format.read_array(fh, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
            raise DataError(f"{self.path}: {key}: unreadable array: {exc}") from None

    def _classes(self, y_train: np.ndarray, y_test: np.ndarray) -> int:
        for key, y in (("y_train", y_train), ("y_test", y_test)):
            if y.dtype.kind not in "iu" or y.ndim != 1 or y.size == 0:
                raise DataError(f"{self.path}: {key} must be a non-empty 1-D integer array, got dtype {y.dtype} "
                                f"shape {y.shape}")
            if y.min() < 0:
                raise DataError(f"{self.path}: {key} holds a negative label {int(y.min())}")
        return int(max(y_train.max(), y_test.max())) + 1

    def shape(self, config: DataConfig) -> tuple[int, int]:
        with self._open() as archive:
            x_shape = self._array(archive, "x_train", header_only=True)
            classes = self._classes(self._array(archive, "y_train"), self._array(archive, "y_test"))
        features = int(np.prod(x_shape[1:])) if len(x_shape) >= 2 else 0
        return features, classes

    def load(self, config: DataConfig) -> Dataset:
        with self._open() as archive:
            arrays = {k: self._array(archive, k) for k in NPZ_KEYS}
        classes = self._classes(arrays["y_train"], arrays["y_test"])
        x = {k: arrays[k].reshape(arrays[k].shape[0], -1) if arrays[k].ndim >= 2 else arrays[k]
             for k in ("x_train", "x_test")}
        return Dataset(str(self.path), x["x_train"], arrays["y_train"], x["x_test"], arrays["y_test"], classes)


def load_data(config: DataConfig) -> Dataset:
    """Load, check and limit the data set a ``[data]`` section names."""
    where = config.label
    data = check_dataset(config.source().load(config), where)
    return data.limit(config.train_limit, config.test_limit)


def load_dataset(name: str, root: str | None = None, test_fraction: float = 0.2, split_seed: int = 0) -> Dataset:
    """Load a registered data set by name (checked, not limited)."""
    from .registry import RegistryError, data_source

    try:
        source = data_source(name)()
    except RegistryError as exc:
        raise DataError(str(exc)) from None
    config = DataConfig(name=name, root=root, test_fraction=test_fraction, split_seed=split_seed)
    return check_dataset(source.load(config), name)
