"""Calling the user's own model builder, data loader and callbacks: the contract, and its checks.

The contract (README "Your own model and data"):

- **Model builder** (`model._target_`): a function (or class) that receives, as keyword arguments,
  the data's input spec — ``input_shape`` (tuple, without the batch axis), ``input_dtype`` (numpy
  dtype name), ``input_name``, ``scale`` (the largest raw input value), ``n_classes`` — each only
  if its signature names it (or it takes ``**kwargs``), plus the node's own keys, and ``name``
  if it names it. It is called under the distribution strategy's scope and returns a **tf-keras**
  model (``import tf_keras as keras``; tfrun runs with ``TF_USE_LEGACY_KERAS=1``, whose
  ``model.fit`` works under every strategy) that takes the data's raw input and outputs class
  probabilities ``[batch, n_classes]`` (end with a softmax). If the builder compiled the model,
  tfrun keeps that compile; otherwise it compiles from ``train.*`` (optimizer, learning rate,
  sparse categorical cross-entropy, accuracy). tfrun exports it with the same ``serving_default``
  signature as its own models, so every target (TF Serving, TFLite, Vertex) works unchanged.
- **Data loader** (`data._target_`): receives ``seed`` (train.seed) if it names it, its node's
  own keys, and tfrun's split keys (``holdout_fraction``, ``validation_fraction``, ``limit``,
  ``shuffle_buffer``) if it names them. It returns numpy arrays, in memory, as a dict
  (tfrun.tasks.data.user_arrays says exactly which keys) or a tfrun.tasks.data.splits.Splits: either all examples
  (``x``, ``y``: tfrun splits them, stratified, by the data.* fractions) or its own splits
  (``train``, ``validation``, ``holdout``: ``(x, y)`` pairs), and the metadata ``input_name``,
  ``scale``, ``n_classes`` (input shape and dtype come from ``x``). Labels are integer class ids
  in ``[0, n_classes)``.
- **Data that does not fit in memory** (tfrun.tasks.data.user_streams): ``train`` (and optionally
  ``validation``) may be a *factory* instead of arrays: a function taking no argument, or one
  (``input_context``, a ``tf.distribute.InputContext``), that returns an **unbatched**
  ``tf.data.Dataset`` of ``(x, y)`` examples, one pass, no ``.repeat()``. tfrun calls it where each
  strategy needs the dataset (per worker, per input pipeline), takes ``data.limit`` examples,
  shuffles with ``data.shuffle_buffer`` and train.seed, and batches by train.batch_size (the global
  batch, split over replicas). ``holdout`` stays an ``(x, y)`` pair of arrays (required: evaluation,
  every deployment's parity check, TFLite evaluation and Vertex batch prediction compare predictions
  on it, so its size bounds memory); its shape and dtype are the export's input, and every streamed
  example must match them (float64 is cast to float32 on both sides). ``n_classes`` is required.
  ``train_examples`` (how many examples the factory yields) sizes an epoch where a strategy repeats
  the data: ``parameter_server`` (or set ``strategy.steps_per_epoch``), and ``multi_worker`` with a
  factory that takes ``input_context`` (it then shards its own files per worker; a zero-argument
  factory is sharded by tf.data, by file or by example). ``input_shape`` / ``input_dtype`` may be
  stated; they must be the holdout's. int8 TFLite calibrates on the first
  target.representative_samples examples of the seeded shuffle of the stream. Under
  ``parameter_server`` the dataset runs on the worker tasks, so its files must be readable there; a
  ``from_generator`` dataset works (measured: several times slower per step than TFRecord files);
  validation is not used (as with arrays). Checked at the data step, before training: the factory
  raising or not returning a Dataset, a batched or endless dataset, an element_spec that does not
  match the holdout, non-integer labels, and the first 256 examples (shape, labels in range); a
  label out of range later in the stream stops training with an error naming the loader.
- **Callbacks** (`train.extra_callbacks`): a list of nodes, each a ``_target_`` that returns a
  tf-keras callback (``tf_keras.callbacks.Callback``); they run after tfrun's own.

What only running the code can show is checked here, and reported as a UserCodeError naming the
function and the problem (the run's record says failed, with that message): an import that fails,
the function raising, a builder that returns no tf-keras model or a model that cannot take the
data or does not output probabilities, a loader whose labels are out of range (tfrun.tasks.data.user_streams
checks a dataset factory the same way).
"""

from __future__ import annotations

import importlib
import inspect
import os
from typing import Any, Callable, Mapping

import numpy as np

from tfrun.tasks.core.paths import PACKAGES, SOURCE_ROOT
from tfrun.tasks.core.user_keys import HYDRA_KEYS, RESERVED
from tfrun.tasks.core.user_keys import names_user_code as is_user_node  # noqa: F401 (the steps ask through this module)


class UserCodeError(RuntimeError):
    """A problem with the user's code, named by its `_target_`: the run fails with this message."""

    def report(self) -> str:
        """For the log: the user's frames of the exception behind it (none of tfrun's), then the message.

        Empty when nothing of the user's raised (a returned value was wrong): tfrun's error line says it all.
        """
        import traceback

        cause = self.__cause__
        if cause is None or cause.__traceback__ is None:
            return ""
        lines: list[str] = []
        frames = [f for f in traceback.extract_tb(cause.__traceback__) if not _is_tfrun(f.filename)]
        if frames:
            lines += [
                "Traceback (most recent call last, tfrun's own frames left out):\n",
                *traceback.format_list(frames),
            ]
        lines += traceback.format_exception_only(type(cause), cause)
        lines.append(f"{type(self).__name__}: {self}\n")
        return "".join(lines)


_TFRUN_SOURCE = tuple(str(SOURCE_ROOT / d) + os.sep for d in PACKAGES)


def _is_tfrun(filename: str) -> bool:
    return os.path.abspath(filename).startswith(_TFRUN_SOURCE)


def resolve(target: str, key: str) -> Callable[..., Any]:
    """Import the user's callable (here, in the training child), with a message that names it."""
    parts = target.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        module_name = ".".join(parts[:cut])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
                continue  # not this prefix: try a shorter one
            raise UserCodeError(
                f"{key}._target_={target}: importing {module_name} failed: {type(exc).__name__}: {exc}"
            ) from exc
        except Exception as exc:
            raise UserCodeError(
                f"{key}._target_={target}: importing {module_name} failed: {type(exc).__name__}: {exc}"
            ) from exc
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            raise UserCodeError(f"{key}._target_={target}: {module_name} has no {'.'.join(parts[cut:])}") from None
        if not callable(obj):
            raise UserCodeError(f"{key}._target_={target} is not a function or class (a {type(obj).__name__} value)")
        return obj
    raise UserCodeError(f"{key}._target_={target}: no module {parts[0]!r} can be imported")


def call(node: Mapping[str, Any], key: str, kind: str, supplied: Mapping[str, Any]) -> Any:
    """Call node's `_target_` with its own keys, and with tfrun's and the supplied ones it names."""
    target = str(node["_target_"])
    function = resolve(target, key)
    own = {k: _plain(v) for k, v in node.items() if k not in HYDRA_KEYS}
    kwargs = {k: v for k, v in own.items() if k not in RESERVED[kind]}
    offered = {**{k: v for k, v in own.items() if k in RESERVED[kind]}, **supplied}
    try:
        parameters = inspect.signature(function).parameters.values()
        takes_any = any(p.kind is p.VAR_KEYWORD for p in parameters)
        names = {p.name for p in parameters}
        kwargs.update({k: v for k, v in offered.items() if takes_any or k in names})
    except (TypeError, ValueError):  # no signature to read (a builtin): give it only its own keys
        pass
    try:
        return function(**kwargs)
    except TypeError as exc:
        if _is_call_error(exc, function):
            raise UserCodeError(f"{key}._target_={target} cannot be called with {sorted(kwargs)}: {exc}") from exc
        raise UserCodeError(f"{target} raised TypeError: {exc}") from exc
    except Exception as exc:
        raise UserCodeError(f"{target} raised {type(exc).__name__}: {exc}") from exc


def _is_call_error(exc: TypeError, function: Any) -> bool:
    """A TypeError from binding the arguments, not from inside the function."""
    return exc.__traceback__ is not None and exc.__traceback__.tb_next is None


def _plain(value: Any) -> Any:
    """OmegaConf containers as plain Python (the user's function should not see DictConfig)."""
    from omegaconf import Container, OmegaConf

    return OmegaConf.to_container(value, resolve=True) if isinstance(value, Container) else value


# -------------------------------------------------------------------------------------- model
def build_model(node: Mapping[str, Any], data: Any) -> Any:
    """The user's model, checked: a tf-keras model that takes the data and outputs probabilities."""
    import tf_keras as keras

    spec = {
        "input_shape": tuple(data.input_shape),
        "input_dtype": data.input_dtype,
        "input_name": data.input_name,
        "scale": data.scale,
        "n_classes": data.n_classes,
    }
    target = str(node["_target_"])
    model = call(node, "model", "model", spec)
    if not isinstance(model, keras.Model):
        raise UserCodeError(f"{target} returned {_what(model)}, not a tf-keras model: {_model_hint(model)}")
    probe(model, data, target)
    return model


def _what(value: Any) -> str:
    return "None" if value is None else f"a {type(value).__module__}.{type(value).__qualname__}"


def _model_hint(value: Any) -> str:
    module = type(value).__module__ if value is not None else ""
    if module.startswith("keras"):
        return (
            "it is a Keras 3 model; tfrun trains with tf-keras (TF_USE_LEGACY_KERAS=1, model.fit under every "
            "strategy): build it with `import tf_keras as keras`"
        )
    if value is None:
        return "the function must return the model it builds (a missing `return model`?)"
    return "return a tf_keras.Model (Sequential or functional)"


def probe(model: Any, data: Any, target: str) -> None:
    """Run two holdout examples through the model: it must take the data's input and output probabilities.

    The holdout, not the training split: it is in memory for every loader, a stream's training examples are not.
    """
    x = data.x_holdout[:2]
    try:
        out = np.asarray(model(x, training=False))
    except Exception as exc:
        raise UserCodeError(
            f"the model {target} built cannot take the data's input ({data.input_name}: "
            f"{data.input_dtype} {[None, *data.input_shape]}): {type(exc).__name__}: "
            f"{str(exc).splitlines()[0] if str(exc) else ''}"
        ) from None
    if out.shape != (len(x), data.n_classes):
        raise UserCodeError(
            f"the model {target} built outputs shape {[None, *out.shape[1:]]}; tfrun needs class "
            f"probabilities [None, {data.n_classes}] (n_classes={data.n_classes}): end the model "
            f"with Dense(n_classes, activation='softmax')"
        )
    sums = out.astype("float64").sum(axis=1)
    if (out < 0).any() or not np.allclose(sums, 1.0, atol=1e-3):
        raise UserCodeError(
            f"the model {target} built does not output probabilities (a row sums to "
            f"{float(sums[0]):.4g}, values from {float(out.min()):.4g}): end it with a softmax "
            "activation (logits are not what the export and the parity checks expect)"
        )


def compiled_by_builder(model: Any) -> bool:
    """Whether the builder compiled the model itself (tfrun then keeps its optimizer, loss and metrics)."""
    return bool(getattr(model, "_is_compiled", False))


# ---------------------------------------------------------------------------------- callbacks
def callbacks(nodes: Any) -> list[Any]:
    """train.extra_callbacks, each checked to be a tf-keras callback."""
    import tf_keras as keras

    made = []
    for i, node in enumerate(nodes or []):
        key = f"train.extra_callbacks[{i}]"
        target = str(node["_target_"])
        callback = call(node, key, "callback", {})
        if not isinstance(callback, keras.callbacks.Callback):
            hint = (
                " (a Keras 3 callback: use tf_keras.callbacks, tfrun trains with tf-keras)"
                if type(callback).__module__.startswith("keras")
                else ""
            )
            raise UserCodeError(f"{key}: {target} returned {_what(callback)}, not a tf_keras.callbacks.Callback{hint}")
        made.append(callback)
    return made
