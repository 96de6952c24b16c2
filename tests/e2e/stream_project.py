"""A user project whose loaders return tf.data.Dataset factories (the e2e tests of streamed data write it to a tmp dir).

`records` streams TFRecord shards (written on first use, from sklearn's digits, float32 8x8, 10 classes);
`generated` streams a Python generator; the others each get one thing wrong, as a user might.
"""

USER_CODE = r'''
import os
from pathlib import Path

import numpy as np
import tensorflow as tf

FEATURES = {"x": tf.io.FixedLenFeature([8, 8], tf.float32), "y": tf.io.FixedLenFeature([], tf.int64)}


def _digits():
    """sklearn's digits split 80/20, kept in digits_split.npz beside this file after the first call: every process
    of every run calls this, and importing scikit-learn's datasets and model_selection costs each a second or more."""
    cache = Path(__file__).resolve().parent / "digits_split.npz"
    if not cache.exists():
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        split = train_test_split(digits.images.astype("float32"), digits.target, test_size=0.2,
                                 stratify=digits.target, random_state=0)
        partial = cache.with_name(f"digits_split.{os.getpid()}.npz")
        np.savez(partial, *split)
        os.replace(partial, cache)
    with np.load(cache) as arrays:
        return [arrays[f"arr_{i}"] for i in range(4)]


def _shards(folder, shards):
    root = Path(folder).resolve()
    if not (root / "done").exists():
        x_train, _, y_train, _ = _digits()
        root.mkdir(parents=True, exist_ok=True)
        for i in range(shards):
            path = root / f"train-{i}.tfrecord"
            with tf.io.TFRecordWriter(f"{path}.{os.getpid()}") as writer:
                for x, y in zip(x_train[i::shards], y_train[i::shards]):
                    feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=x.ravel())),
                               "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y)]))}
                    writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
            os.replace(f"{path}.{os.getpid()}", path)
        (root / "done").write_text("")
    return sorted(str(p) for p in root.glob("train-*.tfrecord"))


def _parse(record):
    example = tf.io.parse_single_example(record, FEATURES)
    return example["x"], example["y"]


def records(*, folder="shards", shards=4, own_shards=False, with_count=True, validation=False):
    """TFRecord shards; own_shards: the factory takes input_context and reads its worker's files."""
    files = _shards(folder, shards)
    _, x_holdout, _, y_holdout = _digits()

    def train():
        return tf.data.TFRecordDataset(files).map(_parse)

    def train_sharded(input_context):
        mine = files[input_context.input_pipeline_id::input_context.num_input_pipelines]
        print(f"input pipeline {input_context.input_pipeline_id} of {input_context.num_input_pipelines}: "
              f"{len(mine)} file(s)", flush=True)
        return tf.data.TFRecordDataset(mine).map(_parse)

    result = {"train": train_sharded if own_shards else train, "holdout": (x_holdout[:180], y_holdout[:180]),
              "n_classes": 10, "input_name": "pixels", "scale": 16.0}
    if validation:
        result["validation"] = lambda: tf.data.Dataset.from_tensor_slices((x_holdout[180:], y_holdout[180:]))
    if with_count:
        result["train_examples"] = 1437
    return result


def generated(*, validation=True):
    """A Python generator (works in one process, not on parameter-server workers)."""
    x_train, x_holdout, y_train, y_holdout = _digits()

    def examples():
        for x, y in zip(x_train, y_train):
            yield x, y

    spec = (tf.TensorSpec([8, 8], tf.float32), tf.TensorSpec([], tf.int64))
    result = {"train": lambda: tf.data.Dataset.from_generator(examples, output_signature=spec),
              "holdout": (x_holdout, y_holdout), "n_classes": 10, "train_examples": len(x_train)}
    if validation:
        result["validation"] = (x_holdout[:100], y_holdout[:100])
    return result


def _bad(train, **extra):
    _, x_holdout, _, y_holdout = _digits()
    return {"train": train, "holdout": (x_holdout, y_holdout), "n_classes": 10, **extra}


def _slices(x, y):
    return tf.data.Dataset.from_tensor_slices((x, y))


def raising():
    def make_dataset():
        return _open_shards("gs://bucket/missing-*.tfrecord")

    return _bad(make_dataset)


def _open_shards(pattern):
    raise FileNotFoundError(f"no file matches {pattern}")


def not_a_dataset():
    x, _, y, _ = _digits()
    return _bad(lambda: (x, y))


def batched():
    x, _, y, _ = _digits()
    return _bad(lambda: _slices(x, y).batch(32))


def wrong_shape():
    x, _, y, _ = _digits()
    return _bad(lambda: _slices(x.reshape(-1, 64), y))


def wrong_dtype():
    x, _, y, _ = _digits()
    return _bad(lambda: _slices((x * 255 / 16).astype("uint8"), y))


def labels_out_of_range():
    x, _, y, _ = _digits()
    return _bad(lambda: _slices(x, y + 5))


def late_label_out_of_range():
    x, _, y, _ = _digits()
    y = y.copy()
    y[1000] = 12
    return _bad(lambda: _slices(x, y))


def repeated():
    x, _, y, _ = _digits()
    return _bad(lambda: _slices(x, y).shuffle(100).repeat())


def no_holdout():
    x, _, y, _ = _digits()
    return {"train": lambda: _slices(x, y), "n_classes": 10}
'''

CONFIGS = {
    "data/records.yaml": "_target_: usercode_stream.records\n",
    "data/own_shards.yaml": "_target_: usercode_stream.records\nown_shards: true\n",
    "data/uncounted.yaml": "_target_: usercode_stream.records\nwith_count: false\n",
    "data/generated.yaml": "_target_: usercode_stream.generated\n",
    **{
        f"data/{name}.yaml": f"_target_: usercode_stream.{name}\n"
        for name in (
            "raising",
            "not_a_dataset",
            "batched",
            "wrong_shape",
            "wrong_dtype",
            "labels_out_of_range",
            "late_label_out_of_range",
            "repeated",
            "no_holdout",
        )
    },
}
