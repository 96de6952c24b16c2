"""One loaded model version: its signatures, and Predict / Classify / Regress on them.

Checks and messages follow TF Serving (servables/tensorflow/predict_util.cc, classifier.cc,
regressor.cc). A request's inputs are checked against the SignatureDef (names, dtypes, shapes)
before the model runs, so a bad request is an INVALID_ARGUMENT answer, never a crash.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np

from tfrun.tasks.tfserving import tensors
from tfrun.tasks.tfserving.batching import BatchScheduler
from tfrun.tasks.tfserving.config import BatchingParameters
from tfrun.tasks.tfserving.jsonio import InputInfo
from tfrun.tasks.tfserving.status import Code, ServingError, invalid

PREDICT_METHOD = "tensorflow/serving/predict"
CLASSIFY_METHOD = "tensorflow/serving/classify"
REGRESS_METHOD = "tensorflow/serving/regress"
DEFAULT_SIGNATURE = "serving_default"
INIT_OP_SIGNATURE = "__saved_model_init_op"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


@dataclass
class TensorSpecInfo:
    alias: str
    tensor_name: str
    dtype: int  # DataType enum
    shape: Optional[list[Optional[int]]]  # None: unknown rank; None entries: unknown size

    def compatible(self, shape: Sequence[int]) -> bool:
        if self.shape is None:
            return True
        return len(shape) == len(self.shape) and all(w is None or w == s for w, s in zip(self.shape, shape))


@dataclass
class SignatureInfo:
    name: str
    method_name: str
    inputs: dict[str, TensorSpecInfo]
    outputs: dict[str, TensorSpecInfo]
    fn: Any = None
    flat_arg: Optional[str] = None  # single-input signatures are called through the faster flat path
    scheduler: Optional[BatchScheduler] = field(default=None, repr=False)


def _filtered(outputs: dict[str, np.ndarray], output_filter: Sequence[str]) -> dict[str, np.ndarray]:
    return {k: outputs[k] for k in output_filter} if output_filter else outputs


def _spec(alias: str, info: Any) -> TensorSpecInfo:
    shape = None if info.tensor_shape.unknown_rank else [None if d.size < 0 else d.size for d in info.tensor_shape.dim]
    return TensorSpecInfo(alias=alias, tensor_name=info.name, dtype=info.dtype, shape=shape)


def read_meta_graph(path: Path) -> Any:
    """The 'serve' MetaGraphDef of a SavedModel (saved_model.pb, or saved_model.pbtxt)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    pb, pbtxt = path / "saved_model.pb", path / "saved_model.pbtxt"
    if pb.is_file():
        saved.ParseFromString(pb.read_bytes())
    elif pbtxt.is_file():
        from google.protobuf import text_format

        text_format.Parse(pbtxt.read_text(), saved)
    else:
        raise ServingError(
            Code.NOT_FOUND, f"Could not find SavedModel .pb or .pbtxt at supplied export directory path: {path}"
        )
    for meta in saved.meta_graphs:
        if "serve" in meta.meta_info_def.tags:
            return meta
    raise ServingError(
        Code.NOT_FOUND,
        f"Could not find meta graph def matching supplied tags: {{ serve }}. "
        f"To inspect available tag-sets in the SavedModel, please use the "
        f"SavedModel CLI: `saved_model_cli` (export dir {path})",
    )


def tf_error(err: BaseException) -> ServingError:
    """A TensorFlow exception as a ServingError with TF's own code and message."""
    code = getattr(err, "error_code", None)
    message = getattr(err, "message", None) or str(err)
    if isinstance(code, int) and 0 < code <= 16:
        return ServingError(Code(code), message)
    return invalid(message)


class Servable:
    """A SavedModel version loaded with tf.saved_model.load, ready to answer requests."""

    def __init__(self, model_name: str, version: int, path: Path, batching: Optional[BatchingParameters] = None):
        self.model_name = model_name
        self.version = version
        self.path = Path(path)
        self.batching = batching
        self.signatures: dict[str, SignatureInfo] = {}
        self.signature_defs: Any = None  # the MetaGraphDef's signature_def map (for GetModelMetadata)
        self._loaded: Any = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------ lifecycle
    def load(self) -> None:
        import tensorflow as tf

        meta = read_meta_graph(self.path)
        try:
            self._loaded = tf.saved_model.load(str(self.path), tags=["serve"])
        except Exception as err:  # a broken export: the version fails to load, the server stays up
            raise tf_error(err) from None
        self.signature_defs = meta.signature_def
        callables = getattr(self._loaded, "signatures", {}) or {}
        for key, sig in meta.signature_def.items():
            info = SignatureInfo(
                name=key,
                method_name=sig.method_name,
                inputs={a: _spec(a, t) for a, t in sig.inputs.items()},
                outputs={a: _spec(a, t) for a, t in sig.outputs.items()},
                fn=callables.get(key) if key != INIT_OP_SIGNATURE else None,
            )
            if info.fn is not None and len(info.inputs) == 1 and hasattr(info.fn, "_call_flat"):
                keywords = getattr(info.fn, "_arg_keywords", None)
                if keywords and list(keywords) == list(info.inputs):
                    info.flat_arg = keywords[0]
            if info.fn is not None and self.batching is not None:
                info.scheduler = BatchScheduler(
                    self._runner(info), self.batching, name=f"{self.model_name}-{self.version}-{key}"
                )
            self.signatures[key] = info

    def batching_summaries(self) -> dict[str, str]:
        """Signature -> its batch scheduler's summary, for signatures that ran batches."""
        return {
            key: info.scheduler.summary()
            for key, info in self.signatures.items()
            if info.scheduler is not None and info.scheduler.stats()["batches"]
        }

    def unload(self) -> None:
        for info in self.signatures.values():
            if info.scheduler is not None:
                info.scheduler.stop(wait=False)
        self._loaded = None  # memory goes when the last in-flight request lets go

    # ------------------------------------------------------------------------------ execution
    def _runner(self, info: SignatureInfo) -> Callable[[Mapping[str, np.ndarray]], dict[str, np.ndarray]]:
        def run(inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return self._call(info, inputs)

        return run

    def _call(self, info: SignatureInfo, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import tensorflow as tf

        try:
            feeds = {k: tf.constant(v, dtype=tf.dtypes.as_dtype(info.inputs[k].dtype)) for k, v in inputs.items()}
            if info.flat_arg is not None:
                result = info.fn._call_flat([feeds[info.flat_arg]], info.fn.captured_inputs)
            else:
                result = info.fn(**feeds)
        except tf.errors.OpError as err:
            raise tf_error(err) from None
        except (TypeError, ValueError) as err:
            raise invalid(str(err)) from None
        if not isinstance(result, Mapping):
            result = {next(iter(info.outputs)): result}
        return {k: v.numpy() for k, v in result.items()}

    def _execute(self, info: SignatureInfo, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        if info.scheduler is not None:
            return info.scheduler.run(inputs)
        return self._call(info, inputs)

    # ------------------------------------------------------------------------------ signatures
    def input_infos(self, signature_name: str) -> dict[str, InputInfo]:
        """GetInfoMap for the REST API: input alias -> dtype (INVALID_ARGUMENT for an unknown signature)."""
        name = signature_name or DEFAULT_SIGNATURE
        info = self.signatures.get(name)
        if info is None:
            raise invalid(f'Serving signature name: "{name}" not found in signature def')
        return {a: InputInfo(tensors.dtype_name(t.dtype)) for a, t in info.inputs.items()}

    def predict(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> tuple[str, dict[str, np.ndarray]]:
        """RunPredict: (signature name used, output alias -> array)."""
        info = self._predict_signature(signature_name, inputs, output_filter)
        return info.name, _filtered(self._execute(info, inputs), output_filter)

    async def predict_async(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str] = ()
    ) -> tuple[str, dict[str, np.ndarray]]:
        """`predict` for an asyncio server: a batched request waits for its batch on the event loop
        (an unbatched one runs on the loop's default executor, so the loop keeps taking requests)."""
        info = self._predict_signature(signature_name, inputs, output_filter)
        if info.scheduler is not None:
            outputs = await info.scheduler.run_async(inputs)
        else:
            outputs = await asyncio.get_running_loop().run_in_executor(None, self._call, info, inputs)
        return info.name, _filtered(outputs, output_filter)

    def _predict_signature(
        self, signature_name: str, inputs: Mapping[str, np.ndarray], output_filter: Sequence[str]
    ) -> SignatureInfo:
        """The signature a Predict request names, once its inputs and output filter are checked."""
        name = signature_name or DEFAULT_SIGNATURE
        info = self.signatures.get(name)
        if info is None or info.fn is None:
            raise ServingError(Code.FAILED_PRECONDITION, f'Serving signature key "{name}" not found.')
        if info.method_name not in (PREDICT_METHOD, CLASSIFY_METHOD, REGRESS_METHOD):
            raise ServingError(
                Code.INTERNAL,
                f"Expected prediction signature method_name to be one of "
                f"{{{PREDICT_METHOD}, {CLASSIFY_METHOD}, {REGRESS_METHOD}}}. "
                f"Was: {info.method_name}",
            )
        sent, wanted = set(inputs), set(info.inputs)
        if sent != wanted:
            raise invalid(
                f"input size does not match signature: {len(sent)}!={len(wanted)} "
                f"len({{{','.join(sorted(sent))}}}) != len({{{','.join(sorted(wanted))}}}). "
                f"Sent extra: {{{','.join(sorted(sent - wanted))}}}. "
                f"Missing but required: {{{','.join(sorted(wanted - sent))}}}."
            )
        for index, alias in enumerate(sorted(inputs)):
            spec, arr = info.inputs[alias], inputs[alias]
            got = tensors.enum_for(arr)
            if got != spec.dtype:
                raise invalid(
                    f"Expects arg[{index}] to be {tensors.type_string(spec.dtype)} but "
                    f"{tensors.type_string(got)} is provided"
                )
            if not spec.compatible(arr.shape):
                raise invalid(
                    f"Incompatible shapes: input {alias} has shape {tensors.shape_text(arr.shape)}, the "
                    f"signature {name} expects {tensors.shape_text(spec.shape)}"
                )
        seen: set[str] = set()
        for alias in output_filter:
            if alias not in info.outputs:
                raise invalid(
                    f"output tensor alias not found in signature: {alias} Outputs expected to be in the "
                    f"set {{{','.join(sorted(info.outputs))}}}."
                )
            if alias in seen:
                raise invalid(f"duplicate output tensor alias: {alias}")
            seen.add(alias)
        return info

    def _method_signature(self, signature_name: str, method: str, kind: str) -> SignatureInfo:
        name = signature_name or DEFAULT_SIGNATURE
        info = self.signatures.get(name)
        if info is None:
            raise invalid(f"No signature was found with the name: {name}")
        if info.method_name != method:
            raise invalid(f"Expected {kind} signature method_name to be {method}. Was: {info.method_name}")
        if len(info.inputs) != 1:
            raise invalid("Expected one input Tensor.")
        if "inputs" not in info.inputs:
            raise ServingError(Code.FAILED_PRECONDITION, f"No {kind} inputs found in SignatureDef: {name}")
        return info

    def classify(self, signature_name: str, serialized: list[bytes]) -> tuple[str, list[list[tuple[str, float]]]]:
        """Classify: one list of (label, score) per example (classes and/or scores outputs)."""
        info = self._method_signature(signature_name, CLASSIFY_METHOD, "classification")
        if len(info.outputs) not in (1, 2):
            raise invalid(f"Expected one or two output Tensors, found {len(info.outputs)}")
        if "classes" not in info.outputs and "scores" not in info.outputs:
            raise ServingError(
                Code.FAILED_PRECONDITION,
                'Expected classification signature outputs to contain at least one of "classes" or "scores".',
            )
        n = len(serialized)
        if n == 0:
            raise invalid("Input is empty.")
        examples = np.empty(n, dtype=object)
        examples[:] = serialized
        outputs = self._execute(info, {"inputs": examples})
        classes, scores = outputs.get("classes"), outputs.get("scores")
        for label, arr in (("classes", classes), ("scores", scores)):
            if arr is None:
                continue
            if arr.ndim != 2:
                raise invalid(f"Expected Tensor shape: [batch_size num_classes] but got {list(arr.shape)}")
            if arr.shape[0] != n:
                raise invalid(f"Expected {label} output batch size of {n}. Got: {arr.shape[0]}")
        if classes is not None and classes.dtype.kind not in "OS":
            raise invalid("Expected classes Tensor of DT_STRING.")
        if scores is not None and scores.dtype != np.float32:
            raise invalid("Expected scores Tensor of DT_FLOAT.")
        if classes is not None and scores is not None and classes.shape[1] != scores.shape[1]:
            raise invalid(
                f"Tensors class and score should match in dim_size(1). Got {classes.shape[1]} vs. {scores.shape[1]}"
            )
        width = (classes if classes is not None else scores).shape[1]
        result = []
        for i in range(n):
            row = []
            for c in range(width):
                label = classes[i, c] if classes is not None else b""
                row.append(
                    (
                        label.decode("utf-8", "replace") if isinstance(label, bytes) else str(label),
                        float(scores[i, c]) if scores is not None else 0.0,
                    )
                )
            result.append(row)
        return info.name, result

    def regress(self, signature_name: str, serialized: list[bytes]) -> tuple[str, list[float]]:
        info = self._method_signature(signature_name, REGRESS_METHOD, "regression")
        if len(info.outputs) != 1:
            raise invalid("Expected one output Tensor.")
        if "outputs" not in info.outputs:
            raise ServingError(Code.FAILED_PRECONDITION, "No regression outputs found in SignatureDef")
        n = len(serialized)
        if n == 0:
            raise invalid("Input is empty.")
        examples = np.empty(n, dtype=object)
        examples[:] = serialized
        values = self._execute(info, {"inputs": examples})["outputs"]
        if not (values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1)):
            raise invalid(
                f"Expected output Tensor shape to be either [batch_size] or [batch_size, 1] but got "
                f"{list(values.shape)}"
            )
        if values.shape[0] != n:
            raise invalid(f"Input batch size did not match output batch size: {n} vs. {values.shape[0]}")
        if values.dtype != np.float32:
            raise invalid("Expected output Tensor of DT_FLOAT.")
        return info.name, [float(v) for v in values.reshape(-1)]

    # ------------------------------------------------------------------------------ warm-up
    def warmup(self) -> int:
        """Replay assets.extra/tf_serving_warmup_requests (TFRecord of PredictionLog); 0 if absent."""
        path = self.path / WARMUP_FILE
        if not path.is_file():
            return 0
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_log_pb2

        count = 0
        try:
            for record in tf.data.TFRecordDataset(str(path)):
                count += 1
                if count > MAX_WARMUP_RECORDS:
                    raise invalid(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
                log = prediction_log_pb2.PredictionLog()
                try:
                    log.ParseFromString(record.numpy())
                except Exception:
                    raise invalid(f"Failed to parse warmup record from {path}") from None
                self.replay(log)
        except tf.errors.DataLossError as err:
            raise ServingError(
                Code.DATA_LOSS, f"{err.message}. Please verify your warmup data is in TFRecord format."
            ) from None
        return count

    def replay(self, log: Any) -> None:
        which = log.WhichOneof("log_type")
        if which == "predict_log":
            request = log.predict_log.request
            inputs = {k: tensors.to_ndarray(v) for k, v in request.inputs.items()}
            self.predict(request.model_spec.signature_name, inputs, list(request.output_filter))
        elif which in ("classify_log", "regress_log"):
            request = getattr(log, which).request
            serialized = serialized_examples(request.input)
            if which == "classify_log":
                self.classify(request.model_spec.signature_name, serialized)
            else:
                self.regress(request.model_spec.signature_name, serialized)
        else:
            raise ServingError(Code.UNIMPLEMENTED, f"Unsupported log_type for warmup: {which}")


def serialized_examples(request_input: Any) -> list[bytes]:
    """InputToSerializedExampleTensor: each Example serialized; with a context, context bytes first (merge)."""
    kind = request_input.WhichOneof("kind")
    if kind == "example_list":
        return [e.SerializeToString() for e in request_input.example_list.examples]
    if kind == "example_list_with_context":
        context = request_input.example_list_with_context.context.SerializeToString()
        return [context + e.SerializeToString() for e in request_input.example_list_with_context.examples]
    raise invalid("Input is empty.")


def examples_from_json(context: Optional[dict], examples: list[dict]) -> list[bytes]:
    """REST examples (feature name -> (kind, values)) as serialized tf.train.Example, context merged."""
    from tensorflow.core.example import example_pb2

    def build(features: dict) -> bytes:
        ex = example_pb2.Example()
        for name, (kind, values) in features.items():
            feature = ex.features.feature[name]
            if kind == "int64":
                feature.int64_list.value.extend(values)
            elif kind == "bytes":
                feature.bytes_list.value.extend(values)
            else:
                feature.float_list.value.extend(values)
        return ex.SerializeToString()

    prefix = build(context) if context else b""
    return [prefix + build(e) for e in examples]
