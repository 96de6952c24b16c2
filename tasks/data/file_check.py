"""data=files: the user's .csv or .npz, checked in the runner before TensorFlow starts, and its CSV reader.

A data file's mistakes (no label column, text labels, labels that are not 0..n-1, x and y of different
lengths) are config errors: exit 2 naming the file, the column or array and the first bad row. The check
reads the labels only (an npz's x array only by its header) and stops at the first bad row, so it stays
cheap for big files. Labels must be every integer 0..n-1: tfrun builds an n-class model whose answers are
those class ids, so other labels ({5, 7}, class names) are refused with how to renumber them, never mapped
silently. It uses numpy (an npz) and the csv module (a CSV), never TensorFlow.
"""

from __future__ import annotations

import csv
from typing import Any, Iterable, Iterator, Optional

from tfrun.tasks.core.problems import Problem

RENUMBER = "renumber the classes 0, 1, ..., n-1 in the file and keep the mapping to your class names beside it"


class DataFileError(ValueError):
    """A bad value the loader met in a data file (the validation reads labels only): the message alone."""

    user_facing = True


def problems(path: str, fmt: str, x_key: str, y_key: str, label_column: str) -> Iterator[Problem]:
    """What is wrong with a readable data file of format `fmt` (csv or npz); nothing for a good one."""
    if fmt == "csv":
        yield from _csv_problems(path, label_column)
    elif fmt == "npz":
        yield from _npz_problems(path, x_key, y_key)


# ------------------------------------------------------------------------------------------------ csv
def _label(text: str) -> Optional[int]:
    """A CSV cell as a class id (`3` or `3.0`), or None when it is not a whole number >= 0."""
    try:
        value = float(text)
    except ValueError:
        return None
    return int(value) if value.is_integer() and value >= 0 else None


def _csv_problems(path: str, label_column: str) -> Iterator[Problem]:
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if not header:
            yield Problem(
                "data.path", path, "a CSV with a header row (feature names and data.label_column); it is empty"
            )
            return
        if label_column not in header:
            yield Problem(
                "data.label_column",
                label_column,
                f"a column of {path}, whose header has: {', '.join(header)} (set data.label_column=<the class column>)",
            )
            return
        at, width, seen = header.index(label_column), len(header), {}  # label text -> class id, parsed once
        for row in reader:
            if len(row) != width:
                if not row:
                    continue
                yield Problem(
                    "data.path",
                    path,
                    f"rows of {width} fields like its header; line {reader.line_num} has {len(row)} fields",
                )
                return
            text = row[at]
            if text in seen:
                continue
            label = _label(text)
            if label is None:
                yield Problem(
                    "data.path",
                    path,
                    f"class ids 0..n-1 in column {label_column!r}; line {reader.line_num} has {text!r} "
                    f"(for class names or other values, {RENUMBER})",
                )
                return
            seen[text] = label
    yield from _label_set_problems(path, f"column {label_column!r}", seen.values())


def read_csv(path: str, label_column: str) -> tuple[Any, Any]:
    """x (float32, every column but the label) and y (int64) of a CSV the validation passed."""
    import numpy as np

    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        at, features, labels = header.index(label_column), [], []
        for row in reader:
            if not row:
                continue
            try:
                values = [float(v) for v in row]
            except ValueError:
                column = next(name for name, v in zip(header, row) if not _is_number(v))
                raise DataFileError(
                    f"{path} line {reader.line_num}: column {column!r} holds {row[header.index(column)]!r}; "
                    "every column but the label must be a number"
                ) from None
            labels.append(int(values.pop(at)))
            features.append(values)
    return np.asarray(features, dtype="float32"), np.asarray(labels, dtype="int64")


def labels(path: str, fmt: str, y_key: str, label_column: str) -> list[int]:
    """The class id of every example of a data file the checks above passed, in file order (the labels alone:
    an npz's y array, a CSV's label column), for the checks against the data's shape before training."""
    import numpy as np

    if fmt == "npz":
        with np.load(path, allow_pickle=False) as archive:
            y = archive[y_key]
        return [int(v) for v in (y[:, 0] if y.ndim == 2 else y)]
    with open(path, newline="") as f:
        reader = csv.reader(f)
        at = next(reader).index(label_column)
        return [int(float(row[at])) for row in reader if row]


def features(path: str, fmt: str, x_key: str, label_column: str) -> int:
    """Numbers per example of a data file the checks above passed: an npz's x row size (from its header, the data
    is not read), a CSV's columns but the label; what data.image_shape must multiply to."""
    import math

    import numpy as np

    if fmt == "npz":
        with np.load(path, allow_pickle=False) as archive:
            shape, _ = _npy_header(archive, x_key)
        return math.prod(shape[1:])
    with open(path, newline="") as f:
        return len(next(csv.reader(f))) - 1


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


# ------------------------------------------------------------------------------------------------ npz
def _npz_problems(path: str, x_key: str, y_key: str) -> Iterator[Problem]:
    import zipfile

    import numpy as np

    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        yield Problem("data.path", path, f"an .npz written by numpy.savez (numpy could not read it: {exc})")
        return
    with archive:
        names = list(archive.files)
        missing = [(key, name) for key, name in (("data.x_key", x_key), ("data.y_key", y_key)) if name not in names]
        for key, name in missing:
            yield Problem(key, name, f"an array of {path}, which holds: {', '.join(names) or 'no arrays'}")
        if missing:
            return
        x_shape, x_dtype = _npy_header(archive, x_key)
        try:
            y = archive[y_key]
        except ValueError as exc:  # an object array needs pickle, which tfrun does not load
            yield Problem("data.y_key", y_key, f"an integer array of class ids in {path} ({exc})")
            return
    where = f"array {y_key!r}"
    if x_dtype.kind not in "iuf" or len(x_shape) < 2:
        yield Problem(
            "data.x_key",
            x_key,
            f"a numeric array of {path} with one row per example; {x_key!r} has dtype {x_dtype} and shape {list(x_shape)}",
        )
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iuf":
        yield Problem(
            "data.y_key",
            y_key,
            f"class ids 0..n-1 of shape [examples] in {path}; {where} has dtype {y.dtype} and shape {list(y.shape)} "
            "(one-hot labels: save y.argmax(axis=1))",
        )
        return
    if len(x_shape) and x_shape[0] != len(y):
        yield Problem(
            "data.path", path, f"one label per example; {x_key!r} has {x_shape[0]} rows, {where} {len(y)} labels"
        )
        return
    bad = (y < 0) | (y != np.round(y)) if y.dtype.kind == "f" else y < 0
    if y.dtype.kind == "f":
        bad |= ~np.isfinite(y)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        yield Problem(
            "data.path",
            path,
            f"class ids 0..n-1 in {where}; row {row} (counting from 0) has {y[row].item()!r} ({RENUMBER})",
        )
        return
    yield from _label_set_problems(path, where, (int(v) for v in np.unique(y)))


def _npy_header(archive: Any, name: str) -> tuple[tuple[int, ...], Any]:
    """Shape and dtype of one array of an open npz, from its .npy header (the data is not read)."""
    import numpy as np

    with archive.zip.open(f"{name}.npy") as f:
        version = np.lib.format.read_magic(f)
        read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _fortran, dtype = read(f)
    return tuple(shape), dtype


# ---------------------------------------------------------------------------------------- the label set
def _label_set_problems(path: str, where: str, labels: Iterable[int]) -> Iterator[Problem]:
    """Labels must be every integer 0..n-1, with n >= 2 (tfrun's model has one output per class id)."""
    found = sorted(set(labels))
    if not found:
        yield Problem("data.path", path, f"at least one example in {where}; it has none")
        return
    shown = ", ".join(str(v) for v in found[:10]) + (f", ... ({len(found)} labels)" if len(found) > 10 else "")
    if len(found) < 2:
        yield Problem("data.path", path, f"at least two classes in {where}; it holds only {shown}")
        return
    absent = sorted(set(range(found[-1] + 1)) - set(found))
    if absent:
        listed = ", ".join(str(v) for v in absent[:10]) + (", ..." if len(absent) > 10 else "")
        yield Problem(
            "data.path",
            path,
            f"class ids 0..{len(found) - 1} in {where} (every integer from 0 to n-1); it holds {shown}, "
            f"missing: {listed}. tfrun does not map labels: {RENUMBER}",
        )
