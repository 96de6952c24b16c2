"""The data's known shape (examples per split, number of classes), and the options checked against it before
TensorFlow starts: each a Problem (exit 2) instead of a failure after training.

What is known: data=digits (tfrun reads its labels: 1,797 examples, 10 classes), data=mnist and data=fashion_mnist
(60,000 training examples and a 10,000-image test set as the holdout, 10 classes) and data=files (its label
column or array, read with numpy and csv). A user's own loader is known only when it runs, so nothing is checked
for it. The labels are read only when a rule needs them (a data.limit, a class list, an int8 calibration sample),
and split with the loaders' own code (tfrun.tasks.data.splits), so what is found here is what the run would meet.

The rules: data.image_shape holds as many numbers as an example (digits 64, MNIST 784, a file's row); the
stratified splits need at least one example per class on each side (a small data.limit fails there, in the
data step); target.class_names (target=web) names one word per class; an int8 calibration
sample (target=tflite, target=web with format=tflite) draws target.representative_samples training examples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterator, Optional

from tfrun.tasks.core.problems import Problem
from tfrun.tasks.core.schema import (
    DigitsData,
    FashionMnistData,
    FilesData,
    MnistData,
    Quantization,
    TfliteTarget,
    WebTarget,
)

# data=mnist and data=fashion_mnist, not read here (tens of MB): their training rows and classes (label 9 is among
# the first 20 rows of both, so tfrun's model has 10 outputs at any data.limit >= 20, the smallest allowed).
TRAIN_ROWS_AND_CLASSES = {MnistData: (60_000, 10), FashionMnistData: (60_000, 10)}
FEATURES = {DigitsData: 64, MnistData: 784, FashionMnistData: 784}  # numbers per example (8x8, 28x28 pixels)


@dataclass(frozen=True)
class Shape:
    """What the run's data step will hold: training examples (after the holdout and validation splits) and the
    model's number of classes."""

    train: int
    classes: int
    described: str  # the data, as messages name it


def _own_loader(data: Any) -> bool:
    """The option's own loader (a user may point data=digits's _target_ at theirs: then nothing is known)."""
    own = getattr(type(data), "_target_", None)  # a user's option (UserData) has none: nothing is known
    return own is not None and getattr(data, "_target_", None) == own


def _labels(data: Any) -> Any:
    """The class ids of every example before the split, for data=digits and data=files (numpy), else None."""
    import numpy as np

    if isinstance(data, DigitsData):
        from tfrun.tasks.data.builtin import _sklearn_digits

        return _sklearn_digits()[1]
    if isinstance(data, FilesData):
        from tfrun.tasks.core import datafiles
        from tfrun.tasks.data.file_check import labels

        fmt = datafiles.files_format(data.path, data.format.value)
        return None if fmt is None else np.asarray(labels(data.path, fmt, data.y_key, data.label_column))
    return None


def _split_problem(data: Any, n: int, error: ValueError) -> Problem:
    """The loaders' split refused `n` examples: the key to change and the smallest data.limit that splits."""
    if data.limit is not None:
        return Problem(
            "data.limit",
            data.limit,
            f"enough examples for data.holdout_fraction={data.holdout_fraction} and data.validation_fraction="
            f"{data.validation_fraction} to leave at least one example of each class in every split "
            f"({n} examples do not: {error}); raise data.limit or the fractions",
        )
    return Problem(
        "data.holdout_fraction",
        data.holdout_fraction,
        f"fractions that leave at least one example of each class in every split of {data.path} "
        f"({n} examples: {error}); raise data.holdout_fraction and data.validation_fraction, or use more data",
    )


def shape(data: Any, seed: int) -> tuple[Optional[Shape], list[Problem]]:
    """The data's shape after data.limit and the splits (seeded as the run's: the validation split's classes
    depend on which rows the holdout took), or None when it is not known before the run; with the problem the
    split would raise."""
    if not _own_loader(data):
        return None, []
    for kind, (rows, classes) in TRAIN_ROWS_AND_CLASSES.items():
        if isinstance(data, kind):  # its test set is the holdout: only the validation split is taken from rows
            n = rows if data.limit is None else min(data.limit, rows)
            return Shape(n - math.ceil(data.validation_fraction * n), classes, f"data={data.name}"), []
    y = _labels(data)
    if y is None or len(y) == 0:
        return None, []
    import numpy as np

    from tfrun.tasks.data.splits import limit_examples, split

    rows, y = limit_examples(np.arange(len(y)), y.astype("int64"), data.limit)
    try:
        train, _, _, _, holdout, y_holdout = split(
            rows,
            y,
            holdout_fraction=data.holdout_fraction,
            validation_fraction=data.validation_fraction,
            seed=seed,
        )
    except ValueError as err:
        return None, [_split_problem(data, len(y), err)]
    classes = int(max(int(y.max()), int(y_holdout.max())) + 1)
    where = data.path if isinstance(data, FilesData) else f"data={data.name}"
    limited = f" with data.limit={data.limit}" if data.limit is not None else ""
    return Shape(len(train), classes, f"{where}{limited}"), []


def features(data: Any) -> Optional[int]:
    """Numbers per example (what data.image_shape must multiply to), or None when not known before the run."""
    if not _own_loader(data):
        return None
    for kind, n in FEATURES.items():
        if isinstance(data, kind):
            return n
    if isinstance(data, FilesData):
        from tfrun.tasks.core import datafiles
        from tfrun.tasks.data import file_check

        fmt = datafiles.files_format(data.path, data.format.value)
        return None if fmt is None else file_check.features(data.path, fmt, data.x_key, data.label_column)
    return None


def _image_shape(data: Any) -> Iterator[Problem]:
    """data.image_shape reshapes each example: its numbers must be the example's (else the data step's reshape
    fails after TensorFlow started)."""
    n = features(data)
    if n is not None and math.prod(data.image_shape) != n:
        where = data.path if isinstance(data, FilesData) else f"data={data.name}"
        yield Problem(
            "data.image_shape",
            list(data.image_shape),
            f"a shape of {n} numbers, as many as each example of {where} has "
            f"({' x '.join(str(d) for d in data.image_shape)} = {math.prod(data.image_shape)})",
        )


def _representative(target: Any) -> Optional[int]:
    """How many training examples the target's int8 calibration draws (None when it draws none)."""
    if isinstance(target, TfliteTarget) and target.quantization is Quantization.int8:
        return target.representative_samples
    if isinstance(target, WebTarget) and target.format.value == "tflite" and target.quantization is Quantization.int8:
        return target.representative_samples
    return None


def _needs_shape(config: Any) -> bool:
    return (
        config.data.limit is not None
        or isinstance(config.data, FilesData)
        or _representative(config.target) is not None
        or bool(getattr(config.target, "class_names", None))
    )


def problems(config: Any) -> Iterator[Problem]:
    """Every option that disagrees with the data's known shape (nothing when the shape is not known)."""
    if config.data.image_shape:
        yield from _image_shape(config.data)
    if not _needs_shape(config):
        return
    known, found = shape(config.data, config.train.seed)
    yield from found
    if known is None:
        return
    names = getattr(config.target, "class_names", None)
    if names and len(names) != known.classes:
        yield Problem(
            "target.class_names",
            list(names),
            f"one name per class: {known.described} has {known.classes} classes (ids 0..{known.classes - 1}), "
            f"{len(names)} names were given",
        )
    wanted = _representative(config.target)
    if wanted is not None and wanted > known.train:
        yield Problem(
            "target.representative_samples",
            wanted,
            f"at most the {known.train} training examples {known.described} leaves after the holdout and "
            "validation splits (lower it, >= 100, or use more data)",
        )
