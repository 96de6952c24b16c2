"""The built-in data sets, each a `data` config's _target_: digits, Fashion-MNIST, MNIST, your files."""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from tfrun.tasks.core import datafiles
from tfrun.tasks.data.splits import Splits, make_splits


def load_digits(
    *,
    seed: int,
    name: str,
    input_name: str,
    holdout_fraction: float,
    validation_fraction: float,
    limit: Optional[int],
    shuffle_buffer: int,
    image_shape: Optional[Sequence[int]],
) -> Splits:
    """scikit-learn's bundled 8x8 digits: float32 pixels 0..16."""
    x, y = _sklearn_digits()
    return make_splits(
        x,
        y,
        input_name=input_name,
        scale=16.0,
        seed=seed,
        holdout_fraction=holdout_fraction,
        validation_fraction=validation_fraction,
        limit=limit,
        image_shape=image_shape,
    )


def _sklearn_digits() -> tuple[np.ndarray, np.ndarray]:
    """The digits file scikit-learn ships, read as its `load_digits` reads it, without importing scikit-learn
    (whose datasets package costs a training process most of a second)."""
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("data=digits needs scikit-learn's bundled digits file: pip install scikit-learn")
    path = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / "digits.csv.gz"
    with gzip.open(path, "rt", encoding="utf-8") as f:
        data = np.loadtxt(f, delimiter=",")
    return data[:, :-1].reshape(-1, 8, 8).astype("float32"), data[:, -1].astype(int)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST family's format), gzip-compressed."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(
    *,
    seed: int,
    name: str,
    input_name: str,
    holdout_fraction: float,
    validation_fraction: float,
    limit: Optional[int],
    shuffle_buffer: int,
    image_shape: Optional[Sequence[int]],
    path: Optional[str],
) -> Splits:
    """Fashion-MNIST 28x28 uint8; its 10k test images are the holdout."""
    folder = datafiles.find_fashion_mnist(path)
    if folder is None:
        raise FileNotFoundError(datafiles.FASHION_MNIST_HOWTO)
    x_train = _read_idx(folder / "train-images-idx3-ubyte.gz")
    y_train = _read_idx(folder / "train-labels-idx1-ubyte.gz")
    x_test = _read_idx(folder / "t10k-images-idx3-ubyte.gz")
    y_test = _read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    return make_splits(
        x_train,
        y_train,
        x_test=x_test,
        y_test=y_test,
        input_name=input_name,
        scale=255.0,
        seed=seed,
        holdout_fraction=holdout_fraction,
        validation_fraction=validation_fraction,
        limit=limit,
        image_shape=image_shape,
    )


def load_mnist(
    *,
    seed: int,
    name: str,
    input_name: str,
    holdout_fraction: float,
    validation_fraction: float,
    limit: Optional[int],
    shuffle_buffer: int,
    image_shape: Optional[Sequence[int]],
    path: Optional[str],
    download: bool,
) -> Splits:
    """MNIST from an mnist.npz (keras' format); with download=true keras' loader fetches it."""
    found = datafiles.find_mnist(path)
    if found is None:
        if not download:
            raise FileNotFoundError(datafiles.MNIST_HOWTO)
        import tf_keras

        (x_train, y_train), (x_test, y_test) = tf_keras.datasets.mnist.load_data()
    else:
        with np.load(found) as f:
            x_train, y_train, x_test, y_test = f["x_train"], f["y_train"], f["x_test"], f["y_test"]
    return make_splits(
        x_train,
        y_train,
        x_test=x_test,
        y_test=y_test,
        input_name=input_name,
        scale=255.0,
        seed=seed,
        holdout_fraction=holdout_fraction,
        validation_fraction=validation_fraction,
        limit=limit,
        image_shape=image_shape,
    )


def load_files(
    *,
    seed: int,
    name: str,
    input_name: str,
    holdout_fraction: float,
    validation_fraction: float,
    limit: Optional[int],
    shuffle_buffer: int,
    image_shape: Optional[Sequence[int]],
    path: str,
    format: str,
    x_key: str,
    y_key: str,
    label_column: str,
) -> Splits:
    """User data: an .npz with arrays x_key/y_key, or a .csv of numeric features plus a label column."""
    fmt = datafiles.files_format(path, format)
    if fmt == "npz":
        with np.load(path) as f:
            missing = [k for k in (x_key, y_key) if k not in f.files]
            if missing:
                raise KeyError(f"{path} has no array(s) {missing} (data.x_key/data.y_key); it has {f.files}")
            x, y = f[x_key], f[y_key]
    elif fmt == "csv":
        from tfrun.tasks.data.file_check import read_csv

        x, y = read_csv(path, label_column)
    else:
        raise ValueError(f"data.format={format!r}: expected npz or csv")
    scale = float(np.abs(x).max()) or 1.0
    return make_splits(
        x,
        y,
        input_name=input_name,
        scale=scale,
        seed=seed,
        holdout_fraction=holdout_fraction,
        validation_fraction=validation_fraction,
        limit=limit,
        image_shape=image_shape,
    )
