"""Data sets as numpy splits, then tf.data pipelines sized for the strategy.

Loaders (the `data` config's _target_) return a `Splits`: train, validation
and holdout arrays with the input's name, dtype and pixel scale, so the model
can take raw pixels and the export's signature matches the data.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tasks import datafiles


@dataclass
class Splits:
    x_train: np.ndarray
    y_train: np.ndarray
    x_valid: np.ndarray
    y_valid: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    input_name: str
    scale: float  # largest raw value; the model divides by it
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def input_dtype(self) -> str:
        return str(self.x_train.dtype)

    def summary(self) -> dict[str, Any]:
        return {"train": len(self.x_train), "validation": len(self.x_valid), "holdout": len(self.x_holdout),
                "input_name": self.input_name, "input_shape": list(self.input_shape),
                "input_dtype": str(self.x_train.dtype), "classes": self.n_classes, "scale": self.scale}


def _split(x: np.ndarray, y: np.ndarray, *, holdout_fraction: float, validation_fraction: float,
           seed: int, x_holdout: Optional[np.ndarray] = None, y_holdout: Optional[np.ndarray] = None):
    """Stratified train/validation(/holdout) split; a given test set is used as the holdout."""
    from sklearn.model_selection import train_test_split

    if x_holdout is None:
        x, x_holdout, y, y_holdout = train_test_split(x, y, test_size=holdout_fraction, stratify=y,
                                                      random_state=seed)
    if validation_fraction > 0:
        x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=validation_fraction, stratify=y,
                                                              random_state=seed)
    else:
        x_train, y_train, x_valid, y_valid = x, y, x[:0], y[:0]
    return x_train, y_train, x_valid, y_valid, x_holdout, y_holdout


def _limit(x: np.ndarray, y: np.ndarray, limit: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    return (x, y) if limit is None else (x[:limit], y[:limit])


def _splits(x, y, *, input_name: str, scale: float, seed: int, holdout_fraction: float,
            validation_fraction: float, limit: Optional[int], image_shape: Optional[Sequence[int]],
            x_test=None, y_test=None) -> Splits:
    x, y = _limit(x, y, limit)
    if x_test is not None and limit is not None:
        x_test, y_test = _limit(x_test, y_test, max(limit // 5, 1))
    if image_shape:
        x = x.reshape((len(x), *image_shape))
        x_test = None if x_test is None else x_test.reshape((len(x_test), *image_shape))
    y = y.astype("int64")
    parts = _split(x, y, holdout_fraction=holdout_fraction, validation_fraction=validation_fraction, seed=seed,
                   x_holdout=x_test, y_holdout=None if y_test is None else y_test.astype("int64"))
    n_classes = int(max(int(y.max()), int(parts[5].max())) + 1)
    return Splits(*parts, input_name=input_name, scale=float(scale), n_classes=n_classes)


# ------------------------------------------------------------------ loaders
def load_digits(*, seed: int, name: str, input_name: str, holdout_fraction: float, validation_fraction: float,
                limit: Optional[int], shuffle_buffer: int, image_shape: Optional[Sequence[int]]) -> Splits:
    """sklearn's bundled 8x8 digits: float32 pixels 0..16."""
    from sklearn.datasets import load_digits as sk_digits

    digits = sk_digits()
    x = digits.images.astype("float32")
    return _splits(x, digits.target, input_name=input_name, scale=16.0, seed=seed,
                   holdout_fraction=holdout_fraction, validation_fraction=validation_fraction, limit=limit,
                   image_shape=image_shape)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (the MNIST family's format), gzip-compressed."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load_fashion_mnist(*, seed: int, name: str, input_name: str, holdout_fraction: float,
                       validation_fraction: float, limit: Optional[int], shuffle_buffer: int,
                       image_shape: Optional[Sequence[int]], path: Optional[str]) -> Splits:
    """Fashion-MNIST 28x28 uint8; its 10k test images are the holdout."""
    folder = datafiles.find_fashion_mnist(path)
    if folder is None:
        raise FileNotFoundError(datafiles.FASHION_MNIST_HOWTO)
    x_train = _read_idx(folder / "train-images-idx3-ubyte.gz")
    y_train = _read_idx(folder / "train-labels-idx1-ubyte.gz")
    x_test = _read_idx(folder / "t10k-images-idx3-ubyte.gz")
    y_test = _read_idx(folder / "t10k-labels-idx1-ubyte.gz")
    return _splits(x_train, y_train, x_test=x_test, y_test=y_test, input_name=input_name, scale=255.0, seed=seed,
                   holdout_fraction=holdout_fraction, validation_fraction=validation_fraction, limit=limit,
                   image_shape=image_shape)


def load_mnist(*, seed: int, name: str, input_name: str, holdout_fraction: float, validation_fraction: float,
               limit: Optional[int], shuffle_buffer: int, image_shape: Optional[Sequence[int]],
               path: Optional[str], download: bool) -> Splits:
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
    return _splits(x_train, y_train, x_test=x_test, y_test=y_test, input_name=input_name, scale=255.0, seed=seed,
                   holdout_fraction=holdout_fraction, validation_fraction=validation_fraction, limit=limit,
                   image_shape=image_shape)


def load_files(*, seed: int, name: str, input_name: str, holdout_fraction: float, validation_fraction: float,
               limit: Optional[int], shuffle_buffer: int, image_shape: Optional[Sequence[int]], path: str,
               format: str, x_key: str, y_key: str, label_column: str) -> Splits:
    """User data: an .npz with arrays x_key/y_key, or a .csv of numeric features plus a label column."""
    fmt = datafiles.files_format(path, format)
    if fmt == "npz":
        with np.load(path) as f:
            missing = [k for k in (x_key, y_key) if k not in f.files]
            if missing:
                raise KeyError(f"{path} has no array(s) {missing} (data.x_key/data.y_key); it has {f.files}")
            x, y = f[x_key], f[y_key]
    elif fmt == "csv":
        import csv

        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        header, body = rows[0], rows[1:]
        if label_column not in header:
            raise KeyError(f"{path} has no column {label_column!r} (data.label_column); columns: {header}")
        label_at = header.index(label_column)
        table = np.array([[float(v) for v in row] for row in body if row], dtype="float32")
        y = table[:, label_at].astype("int64")
        x = np.delete(table, label_at, axis=1)
    else:
        raise ValueError(f"data.format={format!r}: expected npz or csv")
    scale = float(np.abs(x).max()) or 1.0
    return _splits(x, y, input_name=input_name, scale=scale, seed=seed, holdout_fraction=holdout_fraction,
                   validation_fraction=validation_fraction, limit=limit, image_shape=image_shape)


# ---------------------------------------------------------------- pipelines
def pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool, seed: int, buffer: int) -> Any:
    """A tf.data pipeline: (shuffled) batches, prefetched."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(min(buffer, len(x)), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tasks.build import instantiate
    from tasks.user_calls import is_user_node

    notes: list[str] = []
    if is_user_node(cfg.data):  # the user's loader: checked and turned into Splits (tasks.user_data)
        from tasks import user_calls, user_data

        result = user_calls.call(cfg.data, "data", "data", {"seed": cfg.train.seed})
        splits, notes = user_data.to_splits(result, str(cfg.data._target_), cfg.data, cfg.train.seed)
    else:
        splits = instantiate(cfg.data, seed=cfg.train.seed)
    checked: dict[str, Any] = {}
    if getattr(splits, "streamed", False):  # a train factory (tasks.user_stream): TensorFlow's checks, before training
        from tasks import user_stream

        checked = user_stream.check(splits, ctx.need("strategy"), ctx.state.get("global_batch_size",
                                    cfg.train.batch_size), cfg.strategy.get("steps_per_epoch"))
    ctx.state["data"] = splits
    info = {**splits.summary(), **checked, **({"notes": notes} if notes else {})}
    train, validation = info["train"], info["validation"]
    if checked:  # a stream's size is the loader's train_examples, when it gives it
        train = "streamed" if train is None else f"{train} streamed"
        validation = "streamed" if validation is None else validation
    return {"summary": f"{cfg.data.name}: {train} train / {validation} validation / "
                       f"{info['holdout']} holdout, input {info['input_name']} {info['input_dtype']}"
                       f"{info['input_shape']}", **info}
