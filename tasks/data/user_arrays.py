"""A user's data loader's return value, checked and turned into tfrun.tasks.data.splits.Splits.

The loader (the contract: tfrun.tasks.user_calls) returns a tfrun.tasks.data.splits.Splits, or a dict with

- either ``x`` and ``y`` (every example: tfrun applies data.limit, then splits stratified by
  data.holdout_fraction and data.validation_fraction with train.seed),
- or ``train`` and ``holdout`` (and optionally ``validation``), each an ``(x, y)`` pair;
- and optionally ``input_name`` (default "features"; the export's input name), ``scale`` (the
  largest raw input value, default 1.0; tfrun's own models divide by it) and ``n_classes``
  (default: the largest label + 1).

For data that does not fit in memory, ``train`` (and ``validation``) may instead be a factory: a
function, taking nothing or an ``input_context``, that returns an unbatched ``tf.data.Dataset`` of
``(x, y)`` examples. ``holdout`` must then still be an ``(x, y)`` pair of arrays (every evaluation and
parity check compares predictions on it; its shape and dtype are the export's input), ``n_classes``
is required (tfrun cannot see every training label), and ``train_examples`` (the number of training
examples), ``input_shape`` and ``input_dtype`` (checked against the holdout) are optional. That form
becomes a tfrun.tasks.data.user_streams.StreamedSplits; what only TensorFlow can check is checked there.

x is a numeric numpy array (float64 becomes float32, the dtype TFLite and TF Serving clients
use), y integer class ids. Anything else fails the run with a message naming the loader.
"""

from __future__ import annotations

from typing import Any, Mapping, Union

import numpy as np

from tfrun.tasks.data.splits import Splits, limit_examples, split
from tfrun.tasks.user_calls import UserCodeError

KEYS = (
    "x",
    "y",
    "train",
    "validation",
    "holdout",
    "input_name",
    "scale",
    "n_classes",
    "train_examples",
    "input_shape",
    "input_dtype",
)
STREAM_KEYS = ("train_examples", "input_shape", "input_dtype")  # only with a train factory
INPUT_DTYPES = ("float32", "float16", "uint8", "int8", "int16", "int32", "int64", "uint16")


def to_splits(result: Any, target: str, node: Mapping[str, Any], seed: int) -> tuple[Union[Splits, Any], list[str]]:
    """The loader's result as Splits (or StreamedSplits for a train factory), and notes on what tfrun changed."""
    if isinstance(result, Splits):
        parts = [result.x_train, result.y_train, result.x_valid, result.y_valid, result.x_holdout, result.y_holdout]
        meta: dict[str, Any] = {"input_name": result.input_name, "scale": result.scale, "n_classes": result.n_classes}
    elif isinstance(result, Mapping):
        unknown = sorted(set(result) - set(KEYS))
        if unknown:
            raise UserCodeError(
                f"{target} returned unknown key(s) {unknown}; a data loader returns a dict of "
                f"{', '.join(KEYS)} (see tasks/data/user_arrays.py)"
            )
        if _streams(result, target):
            return _streamed(result, target, node)
        given = [k for k in STREAM_KEYS if k in result]
        if given:
            raise UserCodeError(
                f"{target} returned {', '.join(given)} with arrays; those keys go with a train "
                "factory (with arrays tfrun counts the examples and reads shape and dtype from x)"
            )
        parts = _parts(result, target, node, seed)
        meta = {k: result.get(k) for k in ("input_name", "scale", "n_classes")}
    else:
        raise UserCodeError(
            f"{target} returned {'None' if result is None else type(result).__name__}; a data "
            "loader returns a dict with x and y (or train/validation/holdout pairs) and the "
            "metadata input_name, scale, n_classes (see tasks/data/user_arrays.py)"
        )
    return _checked(parts, meta, target)


def _is_dataset(value: Any) -> bool:
    """A tf.data.Dataset, told without importing TensorFlow."""
    return any(c.__name__ == "DatasetV2" and c.__module__.startswith("tensorflow") for c in type(value).__mro__)


def _streams(result: Mapping[str, Any], target: str) -> bool:
    """Whether the loader chose the factory form (train is a function); a dataset or misplaced factory is an error."""
    for key in ("train", "validation"):
        if _is_dataset(result.get(key)):
            raise UserCodeError(
                f"{target} returned {key} as a tf.data.Dataset; return the function that makes it (a "
                f"factory: `{key}: make_dataset`, not `make_dataset()`): tfrun calls it where each "
                "strategy needs the dataset made (per worker, per input pipeline)"
            )
    for key in ("holdout", "x", "y"):
        value = result.get(key)
        if _is_dataset(value) or callable(value):
            what = "a tf.data.Dataset" if _is_dataset(value) else "a function"
            raise UserCodeError(
                f"{target} returned {key} as {what}; {key} is held in memory as numpy arrays (every "
                "evaluation and parity check compares predictions on the holdout): only train (and "
                "validation) can stream, as dataset factories"
            )
    if callable(result.get("train")):
        return True
    if callable(result.get("validation")):
        raise UserCodeError(
            f"{target} returned validation as a factory but train as arrays; a validation factory "
            "goes with a train factory: return train as one too, or arrays for both"
        )
    return False


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
        raise UserCodeError(
            f"{target} returned {name} of dtype {array.dtype} and shape {array.shape}; expected a "
            "numeric array with one row per example"
        )
    return array


def _parts(result: Mapping[str, Any], target: str, node: Mapping[str, Any], seed: int) -> list[np.ndarray]:
    if "x" in result or "y" in result:
        if "train" in result or "holdout" in result:
            raise UserCodeError(f"{target} returned both x/y and train/holdout; return one form")
        if "x" not in result or "y" not in result:
            raise UserCodeError(
                f"{target} returned {'x' if 'x' in result else 'y'} without {'y' if 'x' in result else 'x'}"
            )
        x, y = _array(result["x"], "x", target), _labels(_array(result["y"], "y", target), "y", target)
        _same_length(x, y, "x", "y", target)
        x, y = limit_examples(x, y, node.get("limit"))
        try:
            return list(
                split(
                    x,
                    y,
                    holdout_fraction=float(node.get("holdout_fraction", 0.2)),
                    validation_fraction=float(node.get("validation_fraction", 0.1)),
                    seed=seed,
                )
            )
        except ValueError as exc:  # stratification needs every class at least twice per split
            counts = dict(zip(*np.unique(y, return_counts=True)))
            raise UserCodeError(
                f"cannot split the examples {target} returned (stratified by class, data."
                f"holdout_fraction and data.validation_fraction): {exc}; examples per class: "
                f"{ {int(k): int(v) for k, v in counts.items()} }"
            ) from exc
    if "train" not in result or "holdout" not in result:
        raise UserCodeError(f"{target} returned neither x/y nor train and holdout; a data loader returns one form")
    x_train, y_train = _pair(result["train"], "train", target)
    x_hold, y_hold = _pair(result["holdout"], "holdout", target)
    if result.get("validation") is not None:
        x_valid, y_valid = _pair(result["validation"], "validation", target)
    else:
        x_valid, y_valid = x_train[:0], y_train[:0]
    limit = node.get("limit")
    x_train, y_train = limit_examples(x_train, y_train, limit)
    if limit is not None:
        x_hold, y_hold = limit_examples(x_hold, y_hold, max(limit // 5, 1))
        x_valid, y_valid = limit_examples(x_valid, y_valid, max(limit // 5, 1))
    return [x_train, y_train, x_valid, y_valid, x_hold, y_hold]


def _labels(y: np.ndarray, name: str, target: str) -> np.ndarray:
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UserCodeError(
            f"{target} returned {name} of shape {list(y.shape)}; expected integer class ids of "
            f"shape [examples] (one-hot labels: return y.argmax(axis=1))"
        )
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)) or not np.array_equal(y, np.round(y)):
            raise UserCodeError(
                f"{target} returned {name} with non-integer values (e.g. {y[y != np.round(y)][:3]}); "
                "expected integer class ids"
            )
    elif y.dtype.kind not in "iub":
        raise UserCodeError(
            f"{target} returned {name} of dtype {y.dtype}; expected integer class ids "
            "(map class names to 0..n_classes-1)"
        )
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
            raise UserCodeError(
                f"{target} returned {name} examples of shape {list(x.shape[1:])}, but train "
                f"examples of shape {list(xs[0].shape[1:])}"
            )
    if xs[0].dtype == np.float64:
        xs = [x.astype("float32") for x in xs]
        notes.append("input cast from float64 to float32")
    dtype = str(xs[0].dtype)
    if dtype not in INPUT_DTYPES or any(str(x.dtype) != dtype for x in xs if len(x)):
        raise UserCodeError(
            f"{target} returned inputs of dtype {[str(x.dtype) for x in xs]}; expected one numeric "
            f"dtype for every split, one of {', '.join(INPUT_DTYPES)}"
        )
    n_classes = meta.get("n_classes")
    largest = max(int(y.max()) for y in ys if len(y))
    if n_classes is None:
        n_classes = largest + 1
    n_classes = _n_classes(n_classes, target)
    for name, y in zip(names, ys):
        _in_range(y, n_classes, name, target)
    splits = Splits(
        xs[0],
        ys[0],
        xs[1],
        ys[1],
        xs[2],
        ys[2],
        input_name=_input_name(meta, target),
        scale=_scale(meta, target),
        n_classes=int(n_classes),
    )
    return splits, notes


def _input_name(meta: Mapping[str, Any], target: str) -> str:
    input_name = meta.get("input_name") or "features"
    if not isinstance(input_name, str) or not input_name.isidentifier():
        raise UserCodeError(
            f"{target} returned input_name={input_name!r}; expected a Python-identifier-like "
            "name, e.g. features (it names the export's input)"
        )
    return input_name


def _scale(meta: Mapping[str, Any], target: str) -> float:
    scale = meta.get("scale")
    scale = 1.0 if scale is None else scale
    if (
        not isinstance(scale, (int, float, np.number))
        or isinstance(scale, bool)
        or not np.isfinite(scale)
        or scale <= 0
    ):
        raise UserCodeError(
            f"{target} returned scale={scale!r}; expected a number > 0 (the largest raw input "
            "value; 1.0 if the inputs need no scaling)"
        )
    return float(scale)


def _n_classes(value: Any, target: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 2:
        raise UserCodeError(f"{target} returned n_classes={value!r}; expected an integer >= 2")
    return int(value)


def _in_range(y: np.ndarray, n_classes: int, name: str, target: str) -> None:
    bad = y[(y < 0) | (y >= n_classes)] if len(y) else y
    if len(bad):
        raise UserCodeError(
            f"{target} returned labels out of range in {name}: "
            f"{sorted({int(v) for v in bad})[:5]} ({len(bad)} of {len(y)}); labels must be "
            f"integers in [0, {int(n_classes)}) with n_classes={int(n_classes)}"
        )


# ---------------------------------------------------------------------------------- a train factory
def _streamed(result: Mapping[str, Any], target: str, node: Mapping[str, Any]) -> tuple[Any, list[str]]:
    """The factory form: factories as they are, the holdout (and array validation) checked as arrays are."""
    from tfrun.tasks.data.user_streams import Factory, StreamedSplits, takes_context

    if "x" in result or "y" in result:
        raise UserCodeError(f"{target} returned both x/y and a train factory; return one form")
    train = Factory(result["train"], "train", target, takes_context(result["train"], "train", target))
    holdout = result.get("holdout")
    if holdout is None:
        raise UserCodeError(
            f"{target} returned a train factory without a holdout: return holdout=(x, y) arrays too. "
            "Evaluation, every deployment's parity check, TFLite evaluation and Vertex batch "
            "prediction compare predictions on it in memory (its size bounds memory use)"
        )
    x_hold, y_hold = _pair(holdout, "holdout", target)
    validation, factory = result.get("validation"), None
    if validation is None:
        x_valid, y_valid = x_hold[:0], y_hold[:0]
    elif callable(validation):
        factory = Factory(validation, "validation", target, takes_context(validation, "validation", target))
        x_valid, y_valid = x_hold[:0], y_hold[:0]
    else:
        x_valid, y_valid = _pair(validation, "validation", target)
    limit = node.get("limit")
    if limit is not None:
        x_hold, y_hold = limit_examples(x_hold, y_hold, max(limit // 5, 1))
        x_valid, y_valid = limit_examples(x_valid, y_valid, max(limit // 5, 1))
    y_hold, y_valid = _labels(y_hold, "holdout y", target), _labels(y_valid, "validation y", target)
    _same_length(x_hold, y_hold, "holdout x", "holdout y", target)
    _same_length(x_valid, y_valid, "validation x", "validation y", target)
    if len(x_hold) == 0:
        raise UserCodeError(f"{target} returned no holdout examples")
    if len(x_valid) and x_valid.shape[1:] != x_hold.shape[1:]:
        raise UserCodeError(
            f"{target} returned validation examples of shape {list(x_valid.shape[1:])}, but holdout "
            f"examples of shape {list(x_hold.shape[1:])}"
        )
    _stated_spec(result, x_hold, target)
    notes: list[str] = []
    cast = x_hold.dtype == np.float64
    if cast:
        x_hold, x_valid = x_hold.astype("float32"), x_valid.astype("float32")
        notes.append("input cast from float64 to float32 (the holdout, and the streamed examples as they are read)")
    dtype = str(x_hold.dtype)
    if dtype not in INPUT_DTYPES or (len(x_valid) and str(x_valid.dtype) != dtype):
        raise UserCodeError(
            f"{target} returned inputs of dtype {[str(x_hold.dtype), str(x_valid.dtype)]}; expected "
            f"one numeric dtype, one of {', '.join(INPUT_DTYPES)}"
        )
    if result.get("n_classes") is None:
        raise UserCodeError(
            f"{target} returned a train factory without n_classes: return n_classes (the number of "
            "classes; tfrun cannot see every training label of a stream)"
        )
    n_classes = _n_classes(result["n_classes"], target)
    _in_range(y_hold, n_classes, "holdout", target)
    _in_range(y_valid, n_classes, "validation", target)
    examples = result.get("train_examples")
    if examples is not None and (
        not isinstance(examples, (int, np.integer)) or isinstance(examples, bool) or examples < 1
    ):
        raise UserCodeError(
            f"{target} returned train_examples={examples!r}; expected the number of training "
            "examples the train factory yields (an integer >= 1), or leave it out"
        )
    if examples is not None and limit is not None:
        examples = min(int(examples), int(limit))
    splits = StreamedSplits(
        train=train,
        validation=factory,
        x_valid=x_valid,
        y_valid=y_valid,
        x_holdout=x_hold,
        y_holdout=y_hold,
        input_name=_input_name(result, target),
        scale=_scale(result, target),
        n_classes=n_classes,
        train_examples=None if examples is None else int(examples),
        limit=None if limit is None else int(limit),
    )
    return splits, notes


def _stated_spec(result: Mapping[str, Any], x_hold: np.ndarray, target: str) -> None:
    """input_shape / input_dtype, when the loader states them, must be the holdout's (the export's input)."""
    shape = result.get("input_shape")
    if shape is not None:
        try:
            stated = tuple(int(d) for d in shape)
        except (TypeError, ValueError):
            stated = None
        if stated != tuple(x_hold.shape[1:]):
            raise UserCodeError(
                f"{target} returned input_shape={shape!r}, but its holdout examples have shape "
                f"{list(x_hold.shape[1:])}; they must agree (or leave input_shape out)"
            )
    dtype = result.get("input_dtype")
    if dtype is not None:
        try:
            stated_dtype = str(np.dtype(str(getattr(dtype, "name", dtype))))
        except TypeError:
            stated_dtype = repr(dtype)
        if stated_dtype != str(x_hold.dtype):
            raise UserCodeError(
                f"{target} returned input_dtype={dtype!r}, but its holdout is {x_hold.dtype}; they "
                "must agree (or leave input_dtype out)"
            )
