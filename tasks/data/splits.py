"""Splits: train, validation and holdout arrays with the input's name, dtype and pixel scale.

Every loader (built-in or the user's, through tfrun.tasks.data.user_arrays) ends in a `Splits`, so the model
can take raw pixels and the export's signature matches the data; `pipeline` turns arrays into tf.data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

import numpy as np

from tfrun.tasks.data.stratified import train_test_split


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
        return {
            "train": len(self.x_train),
            "validation": len(self.x_valid),
            "holdout": len(self.x_holdout),
            "input_name": self.input_name,
            "input_shape": list(self.input_shape),
            "input_dtype": str(self.x_train.dtype),
            "classes": self.n_classes,
            "scale": self.scale,
        }


def split(
    x: np.ndarray,
    y: np.ndarray,
    *,
    holdout_fraction: float,
    validation_fraction: float,
    seed: int,
    x_holdout: Optional[np.ndarray] = None,
    y_holdout: Optional[np.ndarray] = None,
):
    """Stratified train/validation(/holdout) split; a given test set is used as the holdout."""
    if x_holdout is None:
        x, x_holdout, y, y_holdout = train_test_split(x, y, test_size=holdout_fraction, seed=seed)
    if validation_fraction > 0:
        x_train, x_valid, y_train, y_valid = train_test_split(x, y, test_size=validation_fraction, seed=seed)
    else:
        x_train, y_train, x_valid, y_valid = x, y, x[:0], y[:0]
    return x_train, y_train, x_valid, y_valid, x_holdout, y_holdout


def limit_examples(x: np.ndarray, y: np.ndarray, limit: Optional[int]) -> tuple[np.ndarray, np.ndarray]:
    """The first `limit` examples (all when None): data.limit, for quick runs."""
    return (x, y) if limit is None else (x[:limit], y[:limit])


def make_splits(
    x,
    y,
    *,
    input_name: str,
    scale: float,
    seed: int,
    holdout_fraction: float,
    validation_fraction: float,
    limit: Optional[int],
    image_shape: Optional[Sequence[int]],
    x_test=None,
    y_test=None,
) -> Splits:
    x, y = limit_examples(x, y, limit)
    if x_test is not None and limit is not None:
        x_test, y_test = limit_examples(x_test, y_test, max(limit // 5, 1))
    if image_shape:
        x = x.reshape((len(x), *image_shape))
        x_test = None if x_test is None else x_test.reshape((len(x_test), *image_shape))
    y = y.astype("int64")
    parts = split(
        x,
        y,
        holdout_fraction=holdout_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
        x_holdout=x_test,
        y_holdout=None if y_test is None else y_test.astype("int64"),
    )
    n_classes = int(max(int(y.max()), int(parts[5].max())) + 1)
    return Splits(*parts, input_name=input_name, scale=float(scale), n_classes=n_classes)


# ---------------------------------------------------------------- pipelines
def pipeline(x: np.ndarray, y: np.ndarray, *, batch_size: int, shuffle: bool, seed: int, buffer: int) -> Any:
    """A tf.data pipeline: (shuffled) batches, prefetched."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(min(buffer, len(x)), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
