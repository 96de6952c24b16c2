"""A user's training data as a `tf.data.Dataset` factory: checked, then fed to model.fit under every strategy.

The loader (contract: tfrun.tasks.user_calls) returns ``train`` (and optionally ``validation``) as a function
that makes an unbatched dataset of ``(x, y)`` examples, so data that does not fit in memory is read
as it trains. tfrun.tasks.data.user_arrays checks what Python can see and makes a StreamedSplits; the rest needs
TensorFlow and is here (imported lazily: this module loads without it):

- check(): the factory is called once, its dataset's element_spec is compared with the holdout's
  shape and dtype, and its first examples are read (labels in [0, n_classes)), so a wrong dataset
  fails at the data step naming the user's function, not minutes later inside model.fit.
- fit_inputs(): per strategy, as tfrun.tasks.train does for arrays. default / mirrored / central_storage
  and multi_worker take the dataset batched by the global batch (multi_worker shards it by file or by
  element, tf.data's AUTO policy); a factory that takes ``input_context`` under multi_worker shards
  itself (strategy.distribute_datasets_from_function), repeats, and runs steps_per_epoch steps;
  parameter_server takes a DatasetCreator that repeats, with steps_per_epoch. Those steps come from
  strategy.steps_per_epoch, else ``train_examples``, else the dataset's known cardinality — never a
  counting pass, which would read all the data once more (and under parameter_server the data may
  be readable only by the workers). A validation factory is called for the whole validation set
  (a context of one input pipeline) and batched by the global batch; tf.distribute splits it.
- representative(): int8 TFLite calibration examples taken from the stream.
- reading(): a TensorFlow error while model.fit reads the stream names the loader.

Determinism: the shuffle is seeded (train.seed, reshuffled each epoch as with arrays), so with
train.deterministic a factory whose dataset yields the same examples in the same order (files in a
fixed order, no `deterministic=False` interleave, a deterministic generator) gives identical weights
run after run on default, mirrored, central_storage and multi_worker. parameter_server training is
asynchronous and not reproducible, with arrays or a factory.
"""

from __future__ import annotations

import contextlib
import inspect
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Optional

import numpy as np

from tfrun.tasks.user_calls import UserCodeError

FIRST_EXAMPLES = 256  # read at the data step to check shapes and labels before training


@dataclass
class Factory:
    """A user's dataset factory and how to call it."""

    function: Callable[..., Any]
    split: str  # "train" | "validation"
    target: str  # the loader's `_target_`
    takes_context: bool  # called with a tf.distribute.InputContext

    @property
    def name(self) -> str:
        """How errors name it: the loader and the factory, e.g. `mydata.load's train factory (load.<locals>.make)`."""
        function = self.function
        inner = getattr(function, "func", None)  # functools.partial
        label = getattr(inner or function, "__qualname__", None) or type(function).__qualname__
        return f"{self.target}'s {self.split} factory ({'partial ' if inner else ''}{label})"


@dataclass
class StreamedSplits:
    """What a loader returning a train factory gives: the factories, the holdout in memory, the metadata.

    Steps read `input_shape`, `input_dtype`, the holdout arrays and the metadata as they do from
    tfrun.tasks.data.splits.Splits; `x_train` is not in memory and says so, naming the loader.
    """

    train: Factory
    validation: Optional[Factory]
    x_valid: np.ndarray  # validation arrays when the loader gave arrays (else empty)
    y_valid: np.ndarray
    x_holdout: np.ndarray
    y_holdout: np.ndarray
    input_name: str
    scale: float
    n_classes: int
    train_examples: Optional[int] = None  # as the loader states it (after data.limit)
    limit: Optional[int] = None  # data.limit: the first `limit` examples of the train factory's dataset
    steps_per_epoch: Optional[int] = None  # set by check() where a strategy needs it

    streamed = True

    @property
    def target(self) -> str:
        return self.train.target

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_holdout.shape[1:])

    @property
    def input_dtype(self) -> str:
        return str(self.x_holdout.dtype)

    @property
    def x_train(self) -> np.ndarray:
        raise UserCodeError(
            f"this step needs the training examples in memory, but {self.target} returns train as a "
            "tf.data.Dataset factory: return train as an (x, y) pair of arrays for it"
        )

    @property
    def y_train(self) -> np.ndarray:
        return self.x_train

    def summary(self) -> dict[str, Any]:
        return {
            "train": self.train_examples,
            "validation": len(self.x_valid) if self.validation is None else None,
            "holdout": len(self.x_holdout),
            "input_name": self.input_name,
            "input_shape": list(self.input_shape),
            "input_dtype": self.input_dtype,
            "classes": self.n_classes,
            "scale": self.scale,
            "streamed": {
                "train": self.train.name,
                "validation": self.validation.name if self.validation else None,
                "steps_per_epoch": self.steps_per_epoch,
            },
        }


def takes_context(function: Any, split: str, target: str) -> bool:
    """Whether a factory wants the input context: a required positional parameter, or one named input_context."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):  # no signature to read: call it without arguments
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    required = [p for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(required) > 1 or any(p.kind not in positional for p in required):
        names = ", ".join(p.name for p in required)
        raise UserCodeError(
            f"{target} returned {split}={_label(function)} taking ({names}); a {split} factory takes "
            "no argument, or one: input_context (a tf.distribute.InputContext, for a factory that "
            "shards its own files)"
        )
    return bool(required) or any(p.name == "input_context" and p.kind in positional for p in parameters)


def _label(function: Any) -> str:
    return getattr(function, "__qualname__", None) or type(function).__qualname__


# ------------------------------------------------------------------------------------ calling
def make(factory: Factory, context: Any = None) -> Any:
    """The factory's dataset (checked to be one), called with `context` (or a whole-data context) if it takes one."""
    import tensorflow as tf

    try:
        if factory.takes_context:
            dataset = factory.function(context if context is not None else tf.distribute.InputContext())
        else:
            dataset = factory.function()
    except Exception as exc:
        raise UserCodeError(f"{factory.name} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(dataset, tf.data.Dataset):
        what = "None" if dataset is None else f"a {type(dataset).__module__}.{type(dataset).__qualname__}"
        hint = " (a missing `return`?)" if dataset is None else ""
        raise UserCodeError(f"{factory.name} returned {what}{hint}, not a tf.data.Dataset of (x, y) examples")
    return dataset


def _shape(spec: Any) -> list[Optional[int]]:
    return list(spec.shape.as_list()) if spec.shape.rank is not None else ["?"]


def _check_spec(dataset: Any, factory: Factory, data: StreamedSplits) -> None:
    """The dataset's element_spec against the holdout's input shape and dtype, and integer labels."""
    import tensorflow as tf

    spec = dataset.element_spec
    if not (isinstance(spec, tuple) and len(spec) == 2 and all(isinstance(s, tf.TensorSpec) for s in spec)):
        raise UserCodeError(
            f"{factory.name} returned a dataset whose elements are {spec}; tfrun needs (x, y) pairs "
            "of tensors: one example and its integer label"
        )
    x_spec, y_spec = spec
    shape = data.input_shape
    if x_spec.shape.rank == len(shape) + 1 and x_spec.shape[1:].is_compatible_with(shape):
        raise UserCodeError(
            f"{factory.name} returned a batched dataset (examples of shape {_shape(x_spec)}, the "
            f"holdout's are {list(shape)}): return single examples (no .batch()); tfrun batches "
            "them by train.batch_size"
        )
    if not x_spec.shape.is_compatible_with(shape):
        raise UserCodeError(
            f"{factory.name} returned examples of shape {_shape(x_spec)}, but {data.target}'s holdout "
            f"examples have shape {list(shape)} (input_shape): the export's input is the holdout's"
        )
    dtype = x_spec.dtype.name
    if dtype != data.input_dtype and not (dtype == "float64" and data.input_dtype == "float32"):
        raise UserCodeError(
            f"{factory.name} returned examples of dtype {dtype}, but {data.target}'s holdout is "
            f"{data.input_dtype} (input_dtype): yield the dtype the export takes (tf.cast)"
        )
    one_label = y_spec.shape.is_compatible_with([]) or y_spec.shape.is_compatible_with([1])
    if not (y_spec.dtype.is_integer and one_label):
        raise UserCodeError(
            f"{factory.name} returned labels of dtype {y_spec.dtype.name} and shape {_shape(y_spec)}; "
            "tfrun needs one integer class id per example (shape [], e.g. tf.int64; one-hot labels: "
            "tf.argmax(y))"
        )
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise UserCodeError(
            f"{factory.name} returned an endless dataset (a .repeat()?): return one pass over the "
            "examples; tfrun repeats where a strategy needs it and ends each epoch at the data's end"
        )


def _check_examples(dataset: Any, factory: Factory, data: StreamedSplits) -> int:
    """The first examples: readable, of the holdout's shape, with labels in [0, n_classes). Returns how many."""
    count = 0
    try:
        for x, y in dataset.take(FIRST_EXAMPLES).as_numpy_iterator():
            if tuple(np.shape(x)) != data.input_shape:
                raise UserCodeError(
                    f"{factory.name} yields example {count} of shape {list(np.shape(x))}, but the "
                    f"holdout's examples have shape {list(data.input_shape)}"
                )
            label = int(np.reshape(y, -1)[0])
            if not 0 <= label < data.n_classes:
                raise UserCodeError(
                    f"{factory.name} yields a label out of range: {label} (example {count}); labels "
                    f"must be integers in [0, {data.n_classes}) with n_classes={data.n_classes}"
                )
            count += 1
    except UserCodeError:
        raise
    except Exception as exc:  # the user's reader or generator failed while tf.data ran it
        raise UserCodeError(
            f"reading the first examples of {factory.name} failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    if count == 0:
        raise UserCodeError(f"{factory.name} returned an empty dataset")
    return count


def _first_line(exc: BaseException) -> str:
    """The informative line of a TensorFlow error (an assertion's message, else the first line that says something)."""
    text = str(getattr(exc, "message", None) or exc)
    assertion = re.search(r"assertion failed: \[(.*?)\] \[(.*?)\]", text)
    if assertion:
        return f"{assertion.group(1)} {assertion.group(2)}".replace("\\'", "'")  # TensorFlow escapes quotes
    noise = ("Graph execution error", "Detected at node", "<stack traces unavailable>", "[[")
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith(noise)]
    line = lines[0] if lines else ""
    return re.sub(r"^Error in user-defined function passed to .*? transformation with iterator: \S+: ", "", line)


def is_parameter_server(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.experimental.ParameterServerStrategy)


def _shards_itself(strategy: Any, data: StreamedSplits) -> bool:
    """A factory taking input_context under multi_worker: tf.distribute calls it per worker, with steps per epoch."""
    import tensorflow as tf

    return data.train.takes_context and isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


def check(data: StreamedSplits, strategy: Any, global_batch: int, steps_per_epoch: Optional[int]) -> dict[str, Any]:
    """Every check TensorFlow can make before training (the data step's); sets data.steps_per_epoch if needed."""
    checked: dict[str, Any] = {}
    parameter_server = is_parameter_server(strategy)
    for factory in (data.train, data.validation):
        if factory is None or (factory.split == "validation" and parameter_server):
            continue  # parameter_server trains without validation data, as it does with arrays
        dataset = make(factory)
        _check_spec(dataset, factory, data)
        checked[factory.split] = _check_examples(dataset, factory, data)
    if parameter_server or _shards_itself(strategy, data):
        data.steps_per_epoch = _steps(data, global_batch, steps_per_epoch, parameter_server)
    return {"first_examples_checked": checked}


def _steps(data: StreamedSplits, global_batch: int, given: Optional[int], parameter_server: bool) -> int:
    """Steps per epoch for a repeated stream: strategy.steps_per_epoch, train_examples, or a known cardinality."""
    if given:
        return int(given)
    examples = data.train_examples
    if examples is None and not data.train.takes_context:
        cardinality = int(_limited(make(data.train), data).cardinality())
        examples = cardinality if cardinality > 0 else None
    if examples is None:
        why = (
            "under strategy=parameter_server each worker reads the data endlessly and model.fit needs the steps "
            "of an epoch"
            if parameter_server
            else "its factory takes input_context, so under strategy=multi_worker each worker reads its own share "
            "endlessly and model.fit needs the steps of an epoch"
        )
        extra = (
            " or set strategy.steps_per_epoch"
            if parameter_server
            else " (or return a zero-argument factory: tf.data then shards it by file or by example)"
        )
        raise UserCodeError(
            f"{data.target} returns a train factory of unknown size; {why}: return train_examples "
            f"(the number of training examples) with it{extra}"
        )
    return max(1, math.ceil(examples / global_batch))


# ------------------------------------------------------------------------------------ pipelines
def _limited(dataset: Any, data: StreamedSplits) -> Any:
    return dataset if data.limit is None else dataset.take(int(data.limit))


def _examples(dataset: Any, data: StreamedSplits, factory: Factory) -> Any:
    """float64 cast as the holdout was, shapes pinned, and labels asserted in range as they stream."""
    import tensorflow as tf

    x_spec = dataset.element_spec[0]
    cast = x_spec.dtype.name == "float64"  # check() allows it only where the holdout was float64, now float32
    pin = not x_spec.shape.is_fully_defined()
    n_classes, name = data.n_classes, factory.name

    def example(x: Any, y: Any) -> tuple[Any, Any]:
        if cast:
            x = tf.cast(x, tf.float32)
        if pin:
            x = tf.ensure_shape(x, data.input_shape)
        y = tf.reshape(tf.cast(y, tf.int64), [])
        in_range = tf.logical_and(y >= 0, y < n_classes)
        with tf.control_dependencies(
            [
                tf.debugging.Assert(
                    in_range, [f"{name} yields a label out of range [0, {n_classes}) (n_classes={n_classes}):", y]
                )
            ]
        ):
            return x, tf.identity(y)

    return dataset.map(example)


def _train(dataset: Any, data: StreamedSplits, batch: int, seed: int, buffer: int, repeat: bool) -> Any:
    import tensorflow as tf

    dataset = _examples(_limited(dataset, data), data, data.train).shuffle(
        buffer, seed=seed, reshuffle_each_iteration=True
    )
    return (dataset.repeat() if repeat else dataset).batch(batch).prefetch(tf.data.AUTOTUNE)


def _validation(data: StreamedSplits, batch: int) -> Any:
    import tensorflow as tf

    assert data.validation is not None
    dataset = make(data.validation)
    if data.limit is not None:
        dataset = dataset.take(max(int(data.limit) // 5, 1))
    return _examples(dataset, data, data.validation).batch(batch).prefetch(tf.data.AUTOTUNE)


def fit_inputs(cfg: Any, data: StreamedSplits, strategy: Any, global_batch: int) -> dict[str, Any]:
    """model.fit's data arguments for a streamed train split, per strategy (see the module docstring)."""
    from tfrun.tasks.data.splits import pipeline

    seed, buffer = int(cfg.train.seed), int(cfg.data.shuffle_buffer)
    if is_parameter_server(strategy):
        import tf_keras as keras

        def dataset_fn(input_context: Any) -> Any:
            dataset = make(data.train, input_context)
            if not data.train.takes_context:
                dataset = dataset.shard(input_context.num_input_pipelines, input_context.input_pipeline_id)
            return _train(dataset, data, input_context.get_per_replica_batch_size(global_batch), seed, buffer, True)

        return {"x": keras.utils.experimental.DatasetCreator(dataset_fn), "steps_per_epoch": data.steps_per_epoch}
    inputs: dict[str, Any]
    if _shards_itself(strategy, data):
        inputs = {
            "x": strategy.distribute_datasets_from_function(
                lambda context: _train(
                    make(data.train, context),
                    data,
                    context.get_per_replica_batch_size(global_batch),
                    seed,
                    buffer,
                    True,
                )
            ),
            "steps_per_epoch": data.steps_per_epoch,
        }
    else:
        inputs = {"x": _train(make(data.train), data, global_batch, seed, buffer, False)}
    if data.validation is not None:
        inputs["validation_data"] = _validation(data, global_batch)
    elif len(data.x_valid):
        inputs["validation_data"] = pipeline(
            data.x_valid, data.y_valid, batch_size=global_batch, shuffle=False, seed=seed, buffer=buffer
        )
    return inputs


def representative(data: StreamedSplits, n: int, seed: int, buffer: int) -> np.ndarray:
    """n training examples for int8 calibration: the first n of the seeded shuffle of the stream."""
    dataset = _examples(_limited(make(data.train), data), data, data.train).shuffle(buffer, seed=seed).take(n)
    try:
        examples = [x for x, _ in dataset.as_numpy_iterator()]
    except Exception as exc:
        raise UserCodeError(
            f"reading int8 calibration examples from {data.train.name} failed: {type(exc).__name__}: {_first_line(exc)}"
        ) from exc
    if len(examples) < n:
        raise UserCodeError(
            f"target.representative_samples={n} is more than the {len(examples)} examples "
            f"{data.train.name} yields; lower target.representative_samples (>= 100)"
        )
    return np.stack(examples)


@contextlib.contextmanager
def reading(data: Any) -> Iterator[None]:
    """Around model.fit: a TensorFlow error while a streamed train split is read names the user's loader."""
    if not getattr(data, "streamed", False):
        yield
        return
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as exc:
        import sys

        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")  # TensorFlow's whole message, for the log
        reason = _first_line(exc)
        names = [f.name for f in (data.train, data.validation) if f is not None]
        if any(reason.startswith(name) for name in names):  # tfrun's own check in the stream (a label's range)
            raise UserCodeError(f"training stopped: {reason}") from None
        raise UserCodeError(
            f"training on the examples {data.train.name} streams failed: {type(exc).__name__}: {reason}"
        ) from None
