"""TFLite target: convert the export, quantize, prove the edge model is still the model.

Steps (TFLITE_STEPS in tasks/core/schema/targets.py, the target's `steps`):

- ``tflite_convert``: TFLiteConverter on this run's SavedModel (or, with
  ``target.source=keras``, the book's ``from_keras_model`` on the trained
  model) with ``target.quantization`` none | dynamic | float16 | int8. The
  file goes beside the export, ``<models_dir>/<model_name>/<NNNN>.<label>.tflite``
  (not inside the version dir: TF Serving must never see it), written to a
  temp file and renamed.
- ``tflite_evaluate``: runs the file with the LiteRT interpreter
  (``ai_edge_litert``; ``tf.lite.Interpreter`` only as a fallback, noted in
  the record) on the holdout, against the float SavedModel's signature:
  accuracy and its drop, max |output difference| (int8 outputs dequantized),
  bytes and ratio to a float32 conversion, per-example latency, batch
  throughput. The predictions are saved (``<run_dir>/tflite/*.holdout.npz``,
  with the inputs) and hashed in the record, so a fresh process can check them.
  The ``tflite`` artifact (sha256, bytes, ``accepted``) is added here.
- ``tflite_gate``: fails the run when the drop exceeds
  ``target.max_accuracy_drop``; the file is kept, marked ``accepted: false``.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np

from tfrun.tasks.core.files import sha256_file, write_atomic

QUANTIZATIONS = ("none", "dynamic", "float16", "int8")
PROBABILITIES = "probabilities"  # the export's output (tfrun.tasks.export.save_serving_model)


class TfliteError(RuntimeError):
    """A TFLite step failed for a reason the message explains (no traceback needed)."""


class TfliteConversionError(TfliteError):
    """The converter refused the model; the message names the ops and what to do."""

    def __init__(self, message: str, *, select_ops: Sequence[str] = (), custom_ops: Sequence[str] = ()):
        super().__init__(message)
        self.select_ops = list(select_ops)
        self.custom_ops = list(custom_ops)


class TfliteInterpreterError(TfliteError):
    """The interpreter cannot load or run the file."""


class TfliteQualityGateError(TfliteError):
    """The converted model lost more accuracy than target.max_accuracy_drop allows."""

    user_facing = True  # the message names both accuracies and the knob: the child reports it alone


# ------------------------------------------------------------------ naming
def label(quantization: str, int8_io: str = "int8") -> str:
    """The file name's mode part: float32 | dynamic | float16 | int8 | int8_float_io."""
    if quantization == "none":
        return "float32"
    if quantization == "int8" and int8_io == "float32":
        return "int8_float_io"
    return quantization


def tflite_path(export_dir: Path, version: int, quantization: str, int8_io: str = "int8") -> Path:
    """<models_dir>/<model_name>/<NNNN>.<label>.tflite, beside (not in) the version dir."""
    from tfrun.tasks.export import VERSION_DIGITS

    export_dir = Path(export_dir)
    return export_dir.parent / f"{version:0{VERSION_DIGITS}d}.{label(quantization, int8_io)}.tflite"


def sha256_bytes(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def classes_sha256(predicted: np.ndarray) -> str:
    """Hash of the predicted class ids (int64, in holdout order): what the record states."""
    return hashlib.sha256(np.ascontiguousarray(predicted, dtype=np.int64).tobytes()).hexdigest()


# -------------------------------------------------------------- conversion
def representative_sample(x_train: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n training examples (seeded, without replacement) to calibrate int8 ranges."""
    if n > len(x_train):
        raise TfliteError(
            f"target.representative_samples={n} is more than the {len(x_train)} training examples this run has; "
            f"lower target.representative_samples (>= 100) or use more data (data.limit)"
        )
    rng = np.random.default_rng(seed)
    return x_train[np.sort(rng.choice(len(x_train), size=n, replace=False))]


def check_saved_model(path: Optional[Path | str]) -> Path:
    """The SavedModel dir to convert, or a clear error if there is none."""
    if path is None:
        raise TfliteError(
            "no SavedModel to convert: the tflite target converts this run's export "
            "(the export step must run before tflite_convert)"
        )
    path = Path(path)
    if not (path / "saved_model.pb").is_file():
        raise TfliteError(
            f"no SavedModel at {path} (missing saved_model.pb): the export this run made is gone "
            "or incomplete; rerun the job to export it again"
        )
    return path


_NEITHER = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
_SELECT = re.compile(r"TF Select ops: ([\w, ]+)")
_CUSTOM = re.compile(r"Custom ops: ([\w, ]+)")


def _names(pattern: re.Pattern[str], text: str) -> list[str]:
    found: list[str] = []
    for match in pattern.finditer(text):
        found += [n.strip() for n in match.group(1).split(",") if n.strip()]
    return sorted(set(found))


def conversion_error(exc: BaseException, *, quantization: str, select_tf_ops: bool) -> TfliteConversionError:
    """A converter failure as a message that names the ops and the option that may help."""
    text = str(exc)
    select_ops, custom_ops = _names(_SELECT, text), _names(_CUSTOM, text)
    unnamed = [n for n in _names(_NEITHER, text) if n not in select_ops and n not in custom_ops]
    custom_ops = sorted(set(custom_ops) | (set(unnamed) if select_tf_ops or not select_ops else set()))
    parts = []
    if select_ops:
        parts.append(
            f"TFLite has no builtin op for {', '.join(select_ops)}. These exist as Select TF ops: rerun "
            "with target.select_tf_ops=true (the .tflite then needs a runtime linked with the Flex "
            "delegate, e.g. tensorflow-lite-select-tf-ops on Android)."
        )
    if custom_ops:
        parts.append(
            f"TFLite cannot convert op(s) {', '.join(custom_ops)}: they are neither TFLite builtins "
            "nor Select TF ops, so target.select_tf_ops=true does not help; replace them in the model "
            "or register TFLite custom ops."
        )
    if not parts:
        first = next((line.strip() for line in text.splitlines() if "error" in line.lower()), text.strip()[:300])
        hint = "" if select_tf_ops else " If it names a TensorFlow op TFLite lacks, try target.select_tf_ops=true."
        if quantization == "int8":
            hint += (
                " With int8, every op needs an int8 kernel: target.int8_io=float32 or another quantization may help."
            )
        parts.append(f"TFLite conversion failed: {first}.{hint}")
    return TfliteConversionError(
        f"TFLite conversion ({quantization}) failed. " + " ".join(parts), select_ops=select_ops, custom_ops=custom_ops
    )


def convert(
    *,
    quantization: str,
    saved_model_dir: Optional[Path | str] = None,
    keras_model: Any = None,
    representative: Optional[np.ndarray] = None,
    int8_io: str = "int8",
    select_tf_ops: bool = False,
) -> bytes:
    """A .tflite flatbuffer of a SavedModel (or a tf-keras model) with one quantization mode."""
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization={quantization!r}: expected one of {', '.join(QUANTIZATIONS)}")
    if keras_model is None:
        saved_model_dir = check_saved_model(saved_model_dir)
    if quantization == "int8" and (representative is None or not len(representative)):
        raise TfliteError("int8 quantization needs representative examples (target.representative_samples)")
    import tensorflow as tf

    if keras_model is not None:
        converter = tf.lite.TFLiteConverter.from_keras_model(keras_model)
    else:
        converter = tf.lite.TFLiteConverter.from_saved_model(str(saved_model_dir))
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantization != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if quantization == "int8":
        examples = representative

        def representative_dataset():
            for x in examples:
                yield [x[None]]

        converter.representative_dataset = representative_dataset
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io == "int8":
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    if select_tf_ops:
        ops.append(tf.lite.OpsSet.SELECT_TF_OPS)
    converter.target_spec.supported_ops = ops
    try:
        return converter.convert()
    except Exception as exc:  # ConverterError and friends: turned into a message that names the ops
        raise conversion_error(exc, quantization=quantization, select_tf_ops=select_tf_ops) from None


# ------------------------------------------------------------- interpreter
def interpreter_class() -> tuple[Any, dict[str, Any]]:
    """LiteRT's Interpreter, else tf.lite.Interpreter (deprecated) with a note saying so."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        try:
            from importlib.metadata import version

            found = version("ai-edge-litert")
        except Exception:  # metadata missing: the import worked, that is what counts
            found = None
        return Interpreter, {"name": "ai_edge_litert", "version": found, "note": None}
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter, {
            "name": "tf.lite.Interpreter",
            "version": tf.__version__,
            "note": "ai_edge_litert is not installed, so tf.lite.Interpreter was used; TensorFlow deprecates it "
            "(to be removed) in favour of LiteRT: install the tflite extra",
        }


class TfliteModel:
    """A .tflite file under the interpreter: float probabilities in and out, whatever the tensor types."""

    def __init__(self, source: Path | str | bytes, *, threads: int = 1, output: str = PROBABILITIES):
        cls, self.info = interpreter_class()
        self.threads = threads
        kwargs = {"model_content": source} if isinstance(source, bytes) else {"model_path": str(source)}
        try:
            self.interpreter = cls(num_threads=threads, **kwargs)
            self.interpreter.allocate_tensors()
        except (RuntimeError, ValueError) as exc:
            if "Select TensorFlow op" in str(exc) or "Flex" in str(exc):
                raise TfliteInterpreterError(
                    f"the .tflite file uses Select TF ops (target.select_tf_ops=true), which {self.info['name']} "
                    "cannot run here: the Python wheels have no Flex delegate. The file itself is fine for a "
                    "runtime linked with it; to evaluate here, remove the ops TFLite lacks from the model"
                ) from None
            raise TfliteInterpreterError(f"{self.info['name']} cannot load the .tflite file: {exc}") from None
        self.input, self.output = self._tensors(output)
        self.batch = None

    def _tensors(self, output: str) -> tuple[dict[str, Any], dict[str, Any]]:
        interpreter = self.interpreter
        signatures = interpreter.get_signature_list()
        if signatures:
            key = "serving_default" if "serving_default" in signatures else next(iter(signatures))
            runner = interpreter.get_signature_runner(key)
            inputs, outputs = runner.get_input_details(), runner.get_output_details()
        else:
            inputs = {d["name"]: d for d in interpreter.get_input_details()}
            outputs = {d["name"]: d for d in interpreter.get_output_details()}
        if len(inputs) != 1:
            raise TfliteInterpreterError(f"expected one input tensor, the file has {sorted(inputs)}")
        if output in outputs:
            chosen = outputs[output]
        else:  # e.g. from_keras_model: one float (or quantized) output; skip integer class ids
            candidates = [d for d in outputs.values() if np.dtype(d["dtype"]) not in (np.int64, np.int32)]
            if not candidates:
                raise TfliteInterpreterError(f"no {output!r} output in the file (outputs: {sorted(outputs)})")
            chosen = candidates[0]
        return next(iter(inputs.values())), chosen

    # --- tensors
    def _set_batch(self, n: int) -> None:
        if self.batch != n:
            shape = [n, *self.input["shape_signature"][1:]]
            self.interpreter.resize_tensor_input(self.input["index"], shape, strict=False)
            self.interpreter.allocate_tensors()
            self.batch = n

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        dtype = np.dtype(self.input["dtype"])
        scale, zero_point = self.input["quantization"]
        if dtype.kind in "iu" and scale:
            info = np.iinfo(dtype)
            return np.clip(np.round(x.astype(np.float32) / scale + zero_point), info.min, info.max).astype(dtype)
        return x.astype(dtype, copy=False)

    def dequantize_output(self, y: np.ndarray) -> np.ndarray:
        scale, zero_point = self.output["quantization"]
        if np.dtype(y.dtype).kind in "iu" and scale:
            return (y.astype(np.float32) - zero_point) * scale
        return y.astype(np.float32, copy=False)

    def run(self, x_quantized: np.ndarray) -> np.ndarray:
        self.interpreter.set_tensor(self.input["index"], x_quantized)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Float outputs for a whole array (one batch of len(x))."""
        self._set_batch(len(x))
        return self.dequantize_output(self.run(self.quantize_input(x)))

    # --- timings
    def latencies_us(self, x: np.ndarray, repeats: int, warmup: int = 10) -> np.ndarray:
        """Per-example latency: set one example, invoke, read the output; microseconds per call."""
        self._set_batch(1)
        xq = self.quantize_input(x)
        for i in range(warmup):
            self.run(xq[i % len(xq)][None])
        out = np.empty(repeats)
        for i in range(repeats):
            one = xq[i % len(xq)][None]
            started = time.perf_counter_ns()
            self.run(one)
            out[i] = (time.perf_counter_ns() - started) / 1000.0
        return out

    def throughput(self, x: np.ndarray, batch: int, min_seconds: float = 0.25, min_runs: int = 3) -> float:
        """Examples per second invoking batches of `batch` (the holdout tiled to fill them)."""
        self._set_batch(batch)
        xq = self.quantize_input(np.resize(x, (batch, *x.shape[1:])))
        self.run(xq)  # warm-up
        runs, started = 0, time.perf_counter()
        while runs < min_runs or time.perf_counter() - started < min_seconds:
            self.run(xq)
            runs += 1
        return batch * runs / (time.perf_counter() - started)


# ------------------------------------------------------ float SavedModel
class SavedModelSignature:
    """The export's serving_default signature: the float reference and its latency."""

    def __init__(self, path: Path | str, output: str = PROBABILITIES, loaded: Any = None):
        """`loaded`: the SavedModel at `path` when the job has loaded it already (tasks.export.load_once)."""
        import tensorflow as tf

        self.tf = tf
        self.loaded = loaded if loaded is not None else tf.saved_model.load(str(check_saved_model(path)))
        self.fn = self.loaded.signatures["serving_default"]
        self.input_name = next(iter(self.fn.structured_input_signature[1]))
        self.output = output

    def __call__(self, x: np.ndarray) -> Any:
        return self.fn(**{self.input_name: self.tf.constant(x)})

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self(x)[self.output].numpy()

    def latencies_us(self, x: np.ndarray, repeats: int, warmup: int = 5) -> np.ndarray:
        for i in range(warmup):
            self(x[i % len(x)][None])[self.output].numpy()
        out = np.empty(repeats)
        for i in range(repeats):
            one = x[i % len(x)][None]
            started = time.perf_counter_ns()
            self(one)[self.output].numpy()
            out[i] = (time.perf_counter_ns() - started) / 1000.0
        return out

    def throughput(self, x: np.ndarray, batch: int, min_seconds: float = 0.25, min_runs: int = 3) -> float:
        xb = np.resize(x, (batch, *x.shape[1:]))
        self(xb)[self.output].numpy()
        runs, started = 0, time.perf_counter()
        while runs < min_runs or time.perf_counter() - started < min_seconds:
            self(xb)[self.output].numpy()
            runs += 1
        return batch * runs / (time.perf_counter() - started)


def percentiles(values: np.ndarray) -> dict[str, float]:
    return {
        "p50": round(float(np.percentile(values, 50)), 2),
        "p90": round(float(np.percentile(values, 90)), 2),
        "mean": round(float(values.mean()), 2),
    }


# ------------------------------------------------------------------- steps
def convert_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.core.record_io import relative

    target = cfg.target
    export = ctx.need("export")
    quantization, int8_io = str(target.quantization), str(target.int8_io)
    source = str(target.source)
    representative = None
    if quantization == "int8":
        data = ctx.need("data")
        if getattr(
            data, "streamed", False
        ):  # no training arrays: calibrate on the user's stream (tfrun.tasks.data.user_streams)
            from tfrun.tasks.data.user_streams import representative as streamed_sample

            representative = streamed_sample(
                data, int(target.representative_samples), int(cfg.train.seed), int(cfg.data.shuffle_buffer)
            )
        else:
            representative = representative_sample(
                data.x_train, int(target.representative_samples), int(cfg.train.seed)
            )
    keras_model = ctx.need("model") if source == "keras" else None
    options = dict(
        saved_model_dir=None if keras_model is not None else check_saved_model(export["path"]),
        keras_model=keras_model,
        select_tf_ops=bool(target.select_tf_ops),
    )
    started = time.perf_counter()
    content = convert(quantization=quantization, representative=representative, int8_io=int8_io, **options)
    seconds = time.perf_counter() - started
    # the size baseline: a float32 conversion of the same model (the file itself when quantization=none)
    float32_bytes = len(content) if quantization == "none" else len(convert(quantization="none", **options))
    path = tflite_path(Path(export["path"]), int(export["version"]), quantization, int8_io)
    write_atomic(path, content)
    info = {
        "path": path,
        "bytes": len(content),
        "sha256": sha256_bytes(content),
        "quantization": quantization,
        "label": label(quantization, int8_io),
        "source": source,
        "int8_io": int8_io if quantization == "int8" else None,
        "representative_samples": None if representative is None else len(representative),
        "select_tf_ops": bool(target.select_tf_ops),
        "float32_bytes": float32_bytes,
        "size_ratio": round(len(content) / float32_bytes, 4),
        "convert_seconds": round(seconds, 3),
    }
    ctx.state["tflite"] = info
    return {
        "summary": f"{relative(path)} ({info['label']}: {len(content):,} bytes = {info['size_ratio']:.2f} x "
        f"float32 {float32_bytes:,})",
        **{k: v for k, v in info.items() if k != "path"},
        "path": relative(path),
    }


def evaluate_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.core.record_io import relative
    from tfrun.tasks.export import load_once

    target = cfg.target
    info, data, export = ctx.need("tflite"), ctx.need("data"), ctx.need("export")
    x, y = data.x_holdout, data.y_holdout
    repeats, threads = int(target.latency_repeats), int(target.threads)

    reference = SavedModelSignature(export["path"], loaded=load_once(ctx, check_saved_model(export["path"])))
    float_probabilities = reference.predict(x)
    saved_model_latency = percentiles(reference.latencies_us(x, min(repeats, 100)))

    model = TfliteModel(info["path"], threads=threads)
    probabilities = model.predict(x)
    latency = percentiles(model.latencies_us(x, repeats))
    throughput = model.throughput(x, int(target.throughput_batch))

    predicted, float_predicted = probabilities.argmax(axis=1), float_probabilities.argmax(axis=1)
    accuracy = float((predicted == y).mean())
    float_accuracy = float((float_predicted == y).mean())
    drop = round(float_accuracy - accuracy, 6)
    max_abs_diff = float(np.abs(probabilities - float_probabilities).max())
    agreement = float((predicted == float_predicted).mean())
    accepted = drop <= float(target.max_accuracy_drop)

    npz = ctx.run_dir / "tflite" / f"{Path(info['path']).stem}.holdout.npz"
    npz.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        npz,
        x=x,
        y=y,
        probabilities=probabilities,
        predicted=predicted.astype(np.int64),
        float_probabilities=float_probabilities,
    )
    evaluation = {
        "accepted": accepted,
        "accuracy": accuracy,
        "float_accuracy": float_accuracy,
        "accuracy_drop": drop,
        "max_accuracy_drop": float(target.max_accuracy_drop),
        "max_abs_diff": max_abs_diff,
        "agreement": agreement,
        "examples": int(len(x)),
        "interpreter": model.info,
        "threads": threads,
        "input_dtype": np.dtype(model.input["dtype"]).name,
        "output_dtype": np.dtype(model.output["dtype"]).name,
        "latency_us": {**latency, "repeats": repeats},
        "throughput_per_s": round(throughput, 1),
        "throughput_batch": int(target.throughput_batch),
        "saved_model_latency_us": saved_model_latency,
        "predictions": {
            "path": relative(npz),
            "sha256": sha256_file(npz),
            "predicted_classes_sha256": classes_sha256(predicted),
            "arrays": ["x", "y", "probabilities", "predicted", "float_probabilities"],
        },
    }
    ctx.state["tflite_evaluation"] = evaluation
    artifact = {
        "kind": "tflite",
        "path": relative(info["path"]),
        "model_name": cfg.model_name,
        "version": int(export["version"]),
        "sha256": info["sha256"],
        "bytes": info["bytes"],
        "quantization": info["quantization"],
        "label": info["label"],
        "int8_io": info["int8_io"],
        "source": info["source"],
        "select_tf_ops": info["select_tf_ops"],
        "float32_bytes": info["float32_bytes"],
        "size_ratio": info["size_ratio"],
        "reproducible": True,  # the converter's bytes depend only on the SavedModel and the settings
        **evaluation,
    }
    timings = {
        "tflite_latency_p50_us": latency["p50"],
        "tflite_throughput_per_s": round(throughput, 1),
        "saved_model_latency_p50_us": saved_model_latency["p50"],
    }
    metrics = {
        "tflite_accuracy": accuracy,
        "tflite_float_accuracy": float_accuracy,
        "tflite_accuracy_drop": drop,
        "tflite_max_abs_diff": max_abs_diff,
        "tflite_agreement": agreement,
        "tflite_bytes": info["bytes"],
        "tflite_float32_bytes": info["float32_bytes"],
        "tflite_size_ratio": info["size_ratio"],
        **timings,
    }
    verdict = "accepted" if accepted else f"REJECTED (> {float(target.max_accuracy_drop)})"
    return {
        "summary": f"accuracy {accuracy:.4f} vs float {float_accuracy:.4f} (drop {drop:+.4f}, {verdict}); "
        f"max |diff| {max_abs_diff:.2e}; p50 {latency['p50']:.1f} µs vs SavedModel "
        f"{saved_model_latency['p50']:.0f} µs; {throughput:,.0f} examples/s "
        f"({model.info['name']}, {threads} thread(s))",
        "metrics": metrics,
        "timing_metrics": list(timings),  # not compared by `tfrun-records rerun --verify`
        "artifacts": [artifact],
        "accepted": accepted,
        "accuracy_drop": drop,
    }


def gate_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.core.record_io import relative

    evaluation, info = ctx.need("tflite_evaluation"), ctx.need("tflite")
    if not evaluation["accepted"]:
        raise TfliteQualityGateError(
            f"TFLite {info['label']} model rejected: holdout accuracy {evaluation['accuracy']:.4f} vs "
            f"{evaluation['float_accuracy']:.4f} for the float SavedModel, a drop of {evaluation['accuracy_drop']:.4f}"
            f" > target.max_accuracy_drop={evaluation['max_accuracy_drop']}. The file is kept "
            f"({relative(info['path'])}) and marked accepted=false in the record. Try train.quantization_aware=true, "
            f"a milder target.quantization, or a larger target.max_accuracy_drop."
        )
    return {
        "summary": f"accepted: drop {evaluation['accuracy_drop']:+.4f} <= {evaluation['max_accuracy_drop']}",
        "accepted": True,
    }
