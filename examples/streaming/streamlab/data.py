"""Training examples streamed from TFRecord files by a tf.data factory; the holdout kept in memory.

The digits stand in for a data set too big for memory: on first use they are written as TFRecord
shards (`folder`/train-*.tfrecord) plus a small holdout (`folder`/holdout.npz). tfrun never holds
the training examples: it calls `train` to make the dataset where each strategy needs it, then
shuffles (data.shuffle_buffer) and batches (train.batch_size) what the files yield.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tensorflow as tf

FEATURES = {"pixels": tf.io.FixedLenFeature([8, 8], tf.float32), "label": tf.io.FixedLenFeature([], tf.int64)}


def load(*, folder: str = "data", shards: int = 4) -> dict:
    """A train factory reading the shards, the holdout arrays, and what tfrun needs to know of the stream."""
    root = Path(folder).resolve()  # absolute: parameter-server workers open the files themselves
    if not (root / "holdout.npz").exists():
        _prepare(root, shards)
    files = sorted(str(p) for p in root.glob("train-*.tfrecord"))
    with np.load(root / "holdout.npz") as holdout:
        x_holdout, y_holdout, train_examples = holdout["x"], holdout["y"], int(holdout["train_examples"])

    def train() -> tf.data.Dataset:
        """One pass over the shards, one (pixels, label) example at a time: unbatched, not repeated."""
        return tf.data.TFRecordDataset(files).map(_parse)

    return {
        "train": train,
        "holdout": (x_holdout, y_holdout),
        "n_classes": 10,
        "train_examples": train_examples,
        "input_name": "pixels",
        "scale": 16.0,
    }


def _parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    example = tf.io.parse_single_example(record, FEATURES)
    return example["pixels"], example["label"]


def _prepare(root: Path, shards: int) -> None:
    """Write the shards and the holdout once; each file via a temporary name, so concurrent workers never clash."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x, y = digits.images.astype("float32"), digits.target
    x_train, x_holdout, y_train, y_holdout = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    root.mkdir(parents=True, exist_ok=True)
    for shard in range(shards):
        path = root / f"train-{shard:05d}-of-{shards:05d}.tfrecord"
        with tf.io.TFRecordWriter(f"{path}.{os.getpid()}") as writer:
            for pixels, label in zip(x_train[shard::shards], y_train[shard::shards]):
                features = {
                    "pixels": tf.train.Feature(float_list=tf.train.FloatList(value=pixels.ravel())),
                    "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(label)])),
                }
                writer.write(tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString())
        os.replace(f"{path}.{os.getpid()}", path)
    temporary = root / f"holdout.{os.getpid()}.npz"
    np.savez(temporary, x=x_holdout, y=y_holdout, train_examples=len(x_train))
    os.replace(temporary, root / "holdout.npz")
