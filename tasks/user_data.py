"""A user's data loader's return value, checked and turned into tasks.data.Splits.

The loader (the contract: tasks.user_calls) returns a tasks.data.Splits, or a dict with

- either ``x`` and ``y`` (every example: tfrun applies data.limit, then splits stratified by
  data.holdout_fraction and data.validation_fraction with train.seed),
- or ``train`` and ``holdout`` (and optionally ``validation``), each an ``(x, y)`` pair;
- and optionally ``input_name`` (default "features"; the export's input name), ``scale`` (the
  largest raw input value, default 1.0; tfrun's own models divide by it) and ``n_classes``
  (default: the largest label + 1).

x is a numeric numpy array (float64 becomes float32, the dtype TFLite and TF Serving clients
use), y integer class ids. Anything else fails the run with a message naming the loader.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from tasks.data import Splits, _limit, _split
from tasks.user_calls import UserCodeError

KEYS = ("x", "y", "train", "validation", "holdout", "input_name", "scale", "n_classes")
INPUT_DTYPES = ("float32", "float16", "uint8", "int8", "int16", "int32", "int64", "uint16")


def to_splits(result: Any, target: str, node: Mapping[str, Any], seed: int) -> tuple[Splits, list[str]]:
    """The loader's result as Splits, and notes on what tfrun changed (a float64 input cast to float32)."""
    if isinstance(result, Splits):
        parts = [result.x_train, result.y_train, result.x_valid, result.y_valid, result.x_holdout, result.y_holdout]
        meta: dict[str, Any] = {"input_name": result.input_name, "scale": result.scale, "n_classes": result.n_classes}
    elif isinstance(result, Mapping):
        unknown = sorted(set(result) - set(KEYS))
        if unknown:
            raise UserCodeError(f"{target} returned unknown key(s) {unknown}; a data loader returns a dict of "
                                f"{', '.join(KEYS)} (see tasks/user_data.py)")
        parts = _parts(result, target, node, seed)
        meta = {k: result.get(k) for k in ("input_name", "scale", "n_classes")}
    else:
        raise UserCodeError(f"{target} returned {'None' if result is None else type(result).__name__}; a data "
                            "loader returns a dict with x and y (or train/validation/holdout pairs) and the "
                            "metadata input_name, scale, n_classes (see tasks/user_data.py)")
    return _checked(parts, meta, target)


def _pair(value: Any, name: str, target: str) -> tuple[np.ndarray, np.ndarray]:
    if not (isinstance(value, (tuple, list)) and len(value) == 2):
        raise UserCodeError(f"{target} returned {name}={type(value).__name__}; expected an (x, y) pair of arrays")
    return _array(value[0], f"{name} x", target), _array(value[1], f"{name} y", target)


def _array(value: Any, name: str, target: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except Exception as exc:
        raise UserCodeError(f"{target} returned {name} that is not an array: {exc}") from exc
    if array.dtype == object or array.ndim == 0:
        raise UserCodeError(f"{target} returned {name} of dtype {array.dtype} and shape {array.shape}; expected a "
                            "numeric array with one row per example")
    return array


def _parts(result: Mapping[str, Any], target: str, node: Mapping[str, Any], seed: int) -> list[np.ndarray]:
    if "x" in result or "y" in result:
        if "train" in result or "holdout" in result:
            raise UserCodeError(f"{target} returned both x/y and train/holdout; return one form")
        if "x" not in result or "y" not in result:
            raise UserCodeError(f"{target} returned {'x' if 'x' in result else 'y'} without "
                                f"{'y' if 'x' in result else 'x'}")
        x, y = _array(result["x"], "x", target), _labels(_array(result["y"], "y", target), "y", target)
        _same_length(x, y, "x", "y", target)
        x, y = _limit(x, y, node.get("limit"))
        try:
            return list(_split(x, y, holdout_fraction=float(node.get("holdout_fraction", 0.2)),
                               validation_fraction=float(node.get("validation_fraction", 0.1)), seed=seed))
        except ValueError as exc:  # stratification needs every class at least twice per split
            counts = dict(zip(*np.unique(y, return_counts=True)))
            raise UserCodeError(f"cannot split the examples {target} returned (stratified by class, data."
                                f"holdout_fraction and data.validation_fraction): {exc}; examples per class: "
                                f"{ {int(k): int(v) for k, v in counts.items()} }") from exc
    if "train" not in result or "holdout" not in result:
        raise UserCodeError(f"{target} returned neither x/y nor train and holdout; a data loader returns one form")
    x_train, y_train = _pair(result["train"], "train", target)
    x_hold, y_hold = _pair(result["holdout"], "holdout", target)
    if result.get("validation") is not None:
        x_valid, y_valid = _pair(result["validation"], "validation", target)
    else:
        x_valid, y_valid = x_train[:0], y_train[:0]
    limit = node.get("limit")
    x_train, y_train = _limit(x_train, y_train, limit)
    if limit is not None:
        x_hold, y_hold = _limit(x_hold, y_hold, max(limit // 5, 1))
        x_valid, y_valid = _limit(x_valid, y_valid, max(limit // 5, 1))
    return [x_train, y_train, x_valid, y_valid, x_hold, y_hold]


def _labels(y: np.ndarray, name: str, target: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserCodeError(f"{target} returned {name} of shape {list(y.shape)}; expected integer class ids of "
                            f"shape [examples] (one-hot labels: return y.argmax(axis=1))")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise UserCodeError(f"{target} returned {name} with non-integer values (e.g. {y[y != np.round(y)][:3]}); "
                                "expected integer class ids")
    elif y.dtype.kind not in "iub":
        raise UserCodeError(f"{target} returned {name} of dtype {y.dtype}; expected integer class ids "
                            "(map class names to 0..n_classes-1)")
    return y.astype("int64")


def _same_length(x: np.ndarray, y: np.ndarray, xn: str, yn: str, target: str) -> None:
    if len(x) != len(y):
        raise UserCodeError(f"{target} returned {len(x)} examples in {xn} but {len(y)} labels in {yn}")


def _checked(parts: list[np.ndarray], meta: dict[str, Any], target: str) -> tuple[Splits, list[str]]:
    names = ("train", "validation", "holdout")
    notes: list[str] = []
    xs, ys = [], []
    for i, name in enumerate(names):
        x, y = parts[2 * i], _labels(np.asarray(parts[2 * i + 1]), f"{name} y", target)
        _same_length(x, y, f"{name} x", f"{name} y", target)
        xs.append(x)
        ys.append(y)
    for name, x in zip(names, xs):
        if name != "validation" and len(x) == 0:
            raise UserCodeError(f"{target} returned no {name} examples")
        if len(x) and x.shape[1:] != xs[0].shape[1:]:
            raise UserCodeError(f"{target} returned {name} examples of shape {list(x.shape[1:])}, but train "
                                f"examples of shape {list(xs[0].shape[1:])}")
    if xs[0].dtype == np.float64:
        xs = [x.astype("float32") for x in xs]
        notes.append("input cast from float64 to float32")
    dtype = str(xs[0].dtype)
    if dtype not in INPUT_DTYPES or any(str(x.dtype) != dtype for x in xs if len(x)):
        raise UserCodeError(f"{target} returned inputs of dtype {[str(x.dtype) for x in xs]}; expected one numeric "
                            f"dtype for every split, one of {', '.join(INPUT_DTYPES)}")
    n_classes = meta.get("n_classes")
    largest = max(int(y.max()) for y in ys if len(y))
    if n_classes is None:
        n_classes = largest + 1
    if not isinstance(n_classes, (int, np.integer)) or isinstance(n_classes, bool) or n_classes < 2:
        raise UserCodeError(f"{target} returned n_classes={n_classes!r}; expected an integer >= 2")
    for name, y in zip(names, ys):
        bad = y[(y < 0) | (y >= n_classes)] if len(y) else y
        if len(bad):
            raise UserCodeError(f"{target} returned labels out of range in {name}: "
                                f"{sorted({int(v) for v in bad})[:5]} ({len(bad)} of {len(y)}); labels must be "
                                f"integers in [0, {int(n_classes)}) with n_classes={int(n_classes)}")
    input_name = meta.get("input_name") or "features"
    if not isinstance(input_name, str) or not input_name.isidentifier():
        raise UserCodeError(f"{target} returned input_name={input_name!r}; expected a Python-identifier-like "
                            "name, e.g. features (it names the export's input)")
    scale = meta.get("scale")
    scale = 1.0 if scale is None else scale
    if not isinstance(scale, (int, float, np.number)) or isinstance(scale, bool) or not np.isfinite(scale) \
            or scale <= 0:
        raise UserCodeError(f"{target} returned scale={scale!r}; expected a number > 0 (the largest raw input "
                            "value; 1.0 if the inputs need no scaling)")
    splits = Splits(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], input_name=input_name, scale=float(scale),
                    n_classes=int(n_classes))
    return splits, notes
