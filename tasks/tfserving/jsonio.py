"""TF Serving's REST JSON <-> numpy, with its rules and its error messages (util/json_tensor.cc).

Requests: `{"signature_name": ..., "instances": [...]}` (row format: one entry per example,
batched on a new first dimension) or `{"inputs": ...}` (columnar: whole tensors), exactly one
of them. Binary strings are `{"b64": "..."}`. Answers: `{"predictions": [...]}` for row
requests, `{"outputs": ...}` for columnar ones; floats are written as TF Serving writes them
(shortest of `%g` and `%.9g` that reads back to the same float, whole numbers with `.0`).

Pure numpy; a fast path converts well-formed numeric payloads with one numpy call and the
exact, element-by-element TF Serving walk runs only to validate or explain odd payloads.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from tfrun.tasks.tfserving.status import Code, ServingError, invalid

# DataType enum name -> (numpy dtype, TF's DataTypeString)
DTYPES: dict[str, tuple[Any, str]] = {
    "DT_FLOAT": (np.float32, "float"),
    "DT_DOUBLE": (np.float64, "double"),
    "DT_INT32": (np.int32, "int32"),
    "DT_INT16": (np.int16, "int16"),
    "DT_INT8": (np.int8, "int8"),
    "DT_UINT8": (np.uint8, "uint8"),
    "DT_UINT16": (np.uint16, "uint16"),
    "DT_INT64": (np.int64, "int64"),
    "DT_UINT32": (np.uint32, "uint32"),
    "DT_UINT64": (np.uint64, "uint64"),
    "DT_BOOL": (np.bool_, "bool"),
    "DT_STRING": (object, "string"),
    "DT_HALF": (np.float16, "half"),
}
_FLOAT32_MAX_INT = (1 << 24) - 1
_FLOAT64_MAX_INT = (1 << 53) - 1
_INT_RANGES = {
    "DT_INT32": (-(1 << 31), (1 << 31) - 1),
    "DT_INT16": (-(1 << 31), (1 << 31) - 1),
    "DT_INT8": (-(1 << 31), (1 << 31) - 1),
    "DT_UINT8": (-(1 << 31), (1 << 31) - 1),
    "DT_INT64": (-(1 << 63), (1 << 63) - 1),
    "DT_UINT32": (0, (1 << 32) - 1),
    "DT_UINT64": (0, (1 << 64) - 1),
}
MAX_VALUE_CHARS = 200  # JSON values quoted in error messages are cut here (TF Serving quotes them whole)


def type_string(dtype: str) -> str:
    return DTYPES.get(dtype, (None, dtype.removeprefix("DT_").lower()))[1]


# ------------------------------------------------------------------------------------------ parsing
def json_type(val: Any) -> str:
    if val is None:
        return "Null"
    if val is True:
        return "True"
    if val is False:
        return "False"
    if isinstance(val, dict):
        return "Object"
    if isinstance(val, list):
        return "Array"
    if isinstance(val, str):
        return "String"
    return "Number"


def value_text(val: Any) -> str:
    """A JSON value as quoted in error messages (cut to MAX_VALUE_CHARS)."""
    if isinstance(val, float):
        text = format_float(val, np.float64)
    else:
        try:
            text = json.dumps(val, separators=(",", ":"), allow_nan=True)
        except (TypeError, ValueError):
            text = repr(val)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS] + "..."


def parse_document(body: bytes | str) -> dict[str, Any]:
    """The request body as a JSON object, or TF Serving's parse errors."""
    if not body or (isinstance(body, bytes) and not body.strip()):
        raise invalid("JSON Parse error: The document is empty")
    try:
        doc = json.loads(body)
    except json.JSONDecodeError as err:
        raise invalid(f"JSON Parse error: {err.msg} at offset: {err.pos}") from None
    except UnicodeDecodeError as err:
        raise invalid(f"JSON Parse error: Invalid encoding in string. at offset: {err.start}") from None
    except RecursionError:
        raise invalid("JSON Parse error: Nesting too deep") from None
    if not isinstance(doc, dict):
        raise invalid(f"JSON Value: {value_text(doc)} Is not object")
    return doc


def signature_name(doc: Mapping[str, Any]) -> str:
    name = doc.get("signature_name", "")
    if not isinstance(name, str):
        raise invalid(
            f"JSON Value: {value_text(doc)} not formatted correctly. 'signature_name' key must be a string value."
        )
    return name


@dataclass(frozen=True)
class InputInfo:
    """What the JSON parser needs to know about one signature input."""

    dtype: str  # DataType enum name, e.g. DT_FLOAT


def _type_error(val: Any, dtype: str) -> ServingError:
    return invalid(
        f"JSON Value: {value_text(val)} Type: {json_type(val)} is not of expected type: {type_string(dtype)}"
    )


def _lossy(val: Any, target: str) -> ServingError:
    return invalid(f"Cannot convert JSON value: {value_text(val)} to {target} without loss of precision.")


def decode_b64(val: Any) -> bytes:
    if not is_b64_object(val):
        raise invalid(f"JSON Value: {value_text(val)} not formatted correctly for base64 data")
    try:
        return base64.b64decode(val["b64"], validate=True)
    except (binascii.Error, ValueError):
        raise invalid("Unable to base64 decode") from None


def is_b64_object(val: Any) -> bool:
    return isinstance(val, dict) and len(val) == 1 and isinstance(val.get("b64"), str)


def _is_number(val: Any) -> bool:
    return isinstance(val, (int, float)) and not isinstance(val, bool)


def _checked_value(val: Any, dtype: str) -> Any:
    """One leaf value, checked as AddValueToTensor checks it."""
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        if not _is_number(val):
            raise _type_error(val, dtype)
        limit_int, limit = (
            (_FLOAT32_MAX_INT, float(np.finfo(np.float32).max))
            if dtype == "DT_FLOAT"
            else (_FLOAT64_MAX_INT, float(np.finfo(np.float64).max))
        )
        if isinstance(val, int):
            if abs(val) > limit_int:
                raise _lossy(val, type_string(dtype))
        elif math.isfinite(val) and abs(val) > limit:
            raise _lossy(val, type_string(dtype))
        return val
    if dtype in _INT_RANGES:
        low, high = _INT_RANGES[dtype]
        if not isinstance(val, int) or isinstance(val, bool) or not low <= val <= high:
            raise _type_error(val, dtype)
        return val
    if dtype == "DT_BOOL":
        if not isinstance(val, bool):
            raise _type_error(val, dtype)
        return val
    if dtype == "DT_STRING":
        if isinstance(val, dict):
            return decode_b64(val)
        if not isinstance(val, str):
            raise _type_error(val, dtype)
        return val.encode("utf-8")
    raise ServingError(Code.UNIMPLEMENTED, f"Conversion of JSON Value: {value_text(val)} to type: {type_string(dtype)}")


def dense_shape(val: Any) -> list[int]:
    """GetDenseTensorShape: the sizes of the first element at every nesting level."""
    shape = []
    while isinstance(val, list):
        shape.append(len(val))
        if not val:
            break
        val = val[0]
    return shape


def _walk(val: Any, level: int, shape: list[int], dtype: str, out: list[Any]) -> None:
    """FillTensorProto: every leaf at depth len(shape), every list of the expected size."""
    rank = len(shape)
    if not isinstance(val, list):
        if level != rank:
            raise invalid(
                f"JSON Value: {value_text(val)} found at incorrect level: {level + 1} in the JSON DOM. "
                f"Expected at level: {rank}"
            )
        if isinstance(val, dict) and dtype != "DT_STRING":
            raise _type_error(val, dtype)
        out.append(_checked_value(val, dtype))
        return
    if level >= rank:
        raise invalid(f"Encountered list at unexpected level: {level} expected < {rank}")
    if len(val) != shape[level]:
        raise invalid(
            f"Encountered list at unexpected size: {len(val)} at level: {level} expected size: {shape[level]}"
        )
    for item in val:
        _walk(item, level + 1, shape, dtype, out)


def _numpy_dtype(dtype: str) -> Any:
    if dtype not in DTYPES:
        raise ServingError(Code.UNIMPLEMENTED, f"Conversion of JSON Value to type: {type_string(dtype)}")
    return DTYPES[dtype][0]


def _fast_tensor(val: Any, dtype: str) -> np.ndarray | None:
    """One numpy call for well-formed numeric payloads; None means: take the exact walk."""
    if dtype == "DT_STRING" or dtype not in DTYPES or dtype == "DT_HALF":
        return None
    try:
        arr = np.asarray(val)
    except (ValueError, OverflowError):
        return None
    kind = arr.dtype.kind
    if dtype in ("DT_FLOAT", "DT_DOUBLE"):
        if kind == "i":
            limit = _FLOAT32_MAX_INT if dtype == "DT_FLOAT" else _FLOAT64_MAX_INT
            if arr.size and int(np.abs(arr).max()) > limit:
                return None
        elif kind == "f":
            if dtype == "DT_FLOAT" and arr.size:
                finite = arr[np.isfinite(arr)]
                if finite.size and np.abs(finite).max() > np.finfo(np.float32).max:
                    return None  # lossy: the walk words the error
        else:
            return None
        return arr.astype(DTYPES[dtype][0])
    if dtype == "DT_BOOL":
        return arr if kind == "b" else None
    if kind != "i" and not (kind == "f" and arr.size == 0):
        return None
    low, high = _INT_RANGES[dtype]
    if arr.size and (int(arr.min()) < low or int(arr.max()) > high):
        return None
    return arr.astype(DTYPES[dtype][0])


def to_tensor(val: Any, dtype: str, *, has_bools: bool = True) -> np.ndarray:
    """A JSON value -> a numpy tensor of the signature's dtype, or TF Serving's error."""
    np_dtype = _numpy_dtype(dtype)
    if not has_bools or dtype == "DT_BOOL":
        fast = _fast_tensor(val, dtype)
        if fast is not None:
            return fast
    shape = dense_shape(val)
    values: list[Any] = []
    _walk(val, 0, shape, dtype, values)
    if dtype == "DT_STRING":
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr.reshape(shape)
    if dtype in ("DT_INT8", "DT_UINT8", "DT_INT16"):  # int_val holds int32; the tensor keeps the low bits
        return np.array(values, dtype=np.int64).astype(np_dtype).reshape(shape)
    return np.array(values, dtype=np_dtype).reshape(shape)


def _status_text(err: ServingError) -> str:
    return f"{err.code.name}: {err.message}"


# ------------------------------------------------------------------------------------ predict request
ROW, COLUMNAR = "row", "columnar"


def predict_inputs(
    doc: Mapping[str, Any], inputs: Mapping[str, InputInfo], *, has_bools: bool = True
) -> tuple[dict[str, np.ndarray], str]:
    """FillPredictRequestFromJson: the input tensors and the request format (row or columnar)."""
    if not inputs:
        raise invalid("Failed to get input map for signature: " + (doc.get("signature_name") or "DEFAULT"))
    has_instances, has_inputs = "instances" in doc, "inputs" in doc
    if has_instances and has_inputs:
        raise invalid(
            f"JSON Value: {value_text(doc)} Not formatted correctly expecting only one of 'inputs' or "
            "'instances' keys to exist "
        )
    if has_instances:
        instances = doc["instances"]
        if not isinstance(instances, list):
            raise invalid(f"JSON Value: {value_text(doc)} Excepting 'instances' to be an list/array")
        if not instances:
            raise invalid(f"JSON Value: {value_text(doc)} No values in 'instances' array")
        return _from_instances(instances, inputs, has_bools), ROW
    if has_inputs:
        return _from_columns(doc["inputs"], inputs, has_bools), COLUMNAR
    raise invalid("Missing 'inputs' or 'instances' key")


def _is_element_object(val: Any) -> bool:
    return isinstance(val, dict) and not is_b64_object(val)


def _from_instances(instances: list[Any], inputs: Mapping[str, InputInfo], has_bools: bool) -> dict[str, np.ndarray]:
    names = sorted(inputs)
    objects = _is_element_object(instances[0])
    if not isinstance(instances[0], dict) and len(inputs) > 1:
        raise invalid(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    if not objects:
        name = names[0]
        if not any(_is_element_object(i) for i in instances):
            try:
                tensor = to_tensor(instances, inputs[name].dtype, has_bools=has_bools)
                if tensor.ndim >= 1 and tensor.shape[0] == len(instances):
                    return {name: tensor}
            except ServingError:
                pass  # explain it element by element below
        return {name: _stack_walk([(i, None, v) for i, v in enumerate(instances)], name, inputs)}
    wanted = set(names)
    if all(_is_element_object(i) and set(i) == wanted for i in instances):
        try:
            out = {n: to_tensor([i[n] for i in instances], inputs[n].dtype, has_bools=has_bools) for n in names}
            if all(t.ndim >= 1 and t.shape[0] == len(instances) for t in out.values()):
                return out
        except ServingError:
            pass
    per_name: dict[str, list[tuple[int, str, Any]]] = {n: [] for n in names}
    for index, element in enumerate(instances):
        if not _is_element_object(element):
            raise invalid(f"Expecting object but got list at item {index} of input list")
        for key, value in element.items():
            if key not in inputs:
                raise invalid(
                    f"Failed to process element: {index} key: {key} of 'instances' list. Error: "
                    f"{_status_text(invalid('JSON object: does not have named input: ' + key))}"
                )
            per_name[key].append((index, key, value))
        if set(element) != wanted:
            raise invalid(
                f"Failed to process element: {index} of 'instances' list. JSON object: "
                f"{value_text(element)} keys must be equal to: {','.join(names)}"
            )
    return {n: _stack_walk(per_name[n], n, inputs) for n in names}


def _stack_walk(items: list[tuple[int, str | None, Any]], name: str, inputs: Mapping[str, InputInfo]) -> np.ndarray:
    """AddInstanceItem for each element: same size and shape for all, then batched."""
    dtype = inputs[name].dtype
    first_shape: list[int] | None = None
    parts = []
    for index, key, value in items:
        if _is_element_object(value) and key is None:
            raise invalid(f"Expecting value/list but got object at item {index} of input list")
        shape = dense_shape(value)
        try:
            leaves: list[Any] = []
            _walk(value, 0, shape, dtype, leaves)
            if first_shape is None:
                first_shape = shape
            elif math.prod(first_shape) != len(leaves):
                raise invalid(f"Expecting tensor size: {math.prod(first_shape)} but got: {len(leaves)}")
            elif first_shape != shape:
                raise invalid(
                    f"Expecting shape [{','.join(map(str, first_shape))}] but got: [{','.join(map(str, shape))}]"
                )
        except ServingError as err:
            where = f"{index} key: {key}" if key is not None else f"{index}"
            raise invalid(
                f"Failed to process element: {where} of 'instances' list. Error: {_status_text(err)}"
            ) from None
        parts.append(to_tensor(value, dtype))
    return np.stack(parts) if parts else np.empty((0,))


def _from_columns(val: Any, inputs: Mapping[str, InputInfo], has_bools: bool) -> dict[str, np.ndarray]:
    names = sorted(inputs)
    if not isinstance(val, dict) or is_b64_object(val):
        if len(inputs) > 1:
            raise invalid(
                "inputs is a plain value/list, but expecting an object as multiple input tensors "
                "required as per tensorinfo_map"
            )
        return {names[0]: to_tensor(val, inputs[names[0]].dtype, has_bools=has_bools)}
    out = {}
    for name in names:
        if name not in val:
            raise invalid(f"Missing named input: {name} in 'inputs' object.")
        out[name] = to_tensor(val[name], inputs[name].dtype, has_bools=has_bools)
    return out


# ---------------------------------------------------------------------------------------- responses
def format_float(value: float, dtype: Any = np.float32) -> str:
    """WriteDecimal: %g if it reads back exactly, else full precision; whole numbers get '.0'."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "-Infinity" if value < 0 else "Infinity"
    text = "%g" % value
    if dtype(float(text)) != dtype(value):
        text = "%.9g" % value if dtype is np.float32 or dtype is np.float16 else "%.17g" % value
    if "." not in text and "e" not in text:
        text += ".0"
    return text


def float_tokens(arr: np.ndarray) -> list[str]:
    """Every value of a float array as TF Serving writes it, vectorised where it can be."""
    flat = np.ascontiguousarray(arr).ravel()
    if flat.size == 0:
        return []
    precision = np.float64 if flat.dtype == np.float64 else np.float32
    values = flat.astype(np.float64).tolist()
    if not np.isfinite(flat).all():
        return [format_float(v, precision) for v in values]
    tokens = (("%g," * len(values)) % tuple(values)).split(",")[:-1]
    back = np.array(tokens, dtype=np.float64).astype(precision)
    redo = np.nonzero(back != flat.astype(precision))[0]
    full = "%.9g" if precision is np.float32 else "%.17g"
    for i in redo.tolist():
        tokens[i] = full % values[i]
    for i, t in enumerate(tokens):
        if "." not in t and "e" not in t:
            tokens[i] = t + ".0"
    return tokens


def value_tokens(arr: np.ndarray, name: str) -> list[str]:
    kind = arr.dtype.kind
    if kind == "f":
        return float_tokens(arr)
    if kind == "b":
        return ["true" if v else "false" for v in arr.ravel().tolist()]
    if kind in "iu":
        return [str(v) for v in arr.ravel().tolist()]
    if kind in "OSU":
        as_bytes = name.endswith("_bytes")
        out = []
        for v in arr.ravel().tolist():
            raw = v if isinstance(v, bytes) else str(v).encode()
            if as_bytes:
                out.append('{"b64": "' + base64.b64encode(raw).decode() + '"}')
            else:
                out.append(json.dumps(raw.decode("utf-8", "replace")))
        return out
    raise invalid(f"Failed to write JSON value for tensor type: {arr.dtype}")


def _nest(tokens: list[str], shape: tuple[int, ...]) -> str:
    if not shape:
        return tokens[0]
    if len(shape) == 1:
        return "[" + ",".join(tokens) + "]"
    step = math.prod(shape[1:])
    return "[" + ",".join(_nest(tokens[i * step : (i + 1) * step], shape[1:]) for i in range(shape[0])) + "]"


def tensor_json(arr: Any) -> str:
    """A numpy array as JSON text for a request, fast: whole-number floats go out as integers
    (exact, and TF Serving takes them for float inputs up to 2**24), other floats with 9 (float32)
    or 17 (float64) significant digits, which read back to the same value."""
    arr = np.asarray(arr)
    kind = arr.dtype.kind
    flat = arr.ravel()
    if kind == "f" and flat.size:
        finite = bool(np.isfinite(flat).all())
        if (
            finite
            and flat.dtype != np.float16
            and np.abs(flat).max() < _FLOAT32_MAX_INT
            and bool((flat == np.round(flat)).all())
        ):
            values = flat.astype(np.int64).tolist()
            tokens = ("%d," * len(values) % tuple(values)).split(",")[:-1]
        elif finite:
            values = flat.astype(np.float64).tolist()
            spec = "%.17g," if flat.dtype == np.float64 else "%.9g,"
            tokens = (spec * len(values) % tuple(values)).split(",")[:-1]
        else:
            tokens = [
                format_float(v, np.float64 if flat.dtype == np.float64 else np.float32)
                for v in flat.astype(np.float64).tolist()
            ]
    elif kind in "iu":
        values = flat.tolist()
        tokens = ("%d," * len(values) % tuple(values)).split(",")[:-1] if values else []
    elif kind == "b":
        tokens = ["true" if v else "false" for v in flat.tolist()]
    elif kind in "OSU":
        tokens = []
        for v in flat.tolist():
            if isinstance(v, bytes):
                try:
                    tokens.append(json.dumps(v.decode("utf-8")))
                except UnicodeDecodeError:
                    tokens.append('{"b64": "' + base64.b64encode(v).decode() + '"}')
            else:
                tokens.append(json.dumps(str(v)))
    else:
        tokens = [json.dumps(v) for v in flat.tolist()]
    return _nest(tokens, arr.shape)


def predict_response(outputs: Mapping[str, np.ndarray], fmt: str) -> str:
    """MakeJsonFromTensors: {"predictions": [...]} (row) or {"outputs": ...} (columnar)."""
    if not outputs:
        raise invalid("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if fmt == COLUMNAR:
        parts = {n: _nest(value_tokens(outputs[n], n), outputs[n].shape) for n in names}
        body = (
            parts[names[0]] if len(names) == 1 else "{" + ", ".join(f"{json.dumps(n)}: {parts[n]}" for n in names) + "}"
        )
        return '{\n    "outputs": ' + body + "\n}"
    batch = -1
    for n in names:
        arr = outputs[n]
        if arr.ndim == 0:
            raise invalid(f"Tensor name: {n} has no shape information ")
        if batch >= 0 and arr.shape[0] != batch:
            raise invalid(f"Tensor name: {n} has inconsistent batch size: {arr.shape[0]} expecting: {batch}")
        batch = arr.shape[0]
    per_output = {n: value_tokens(outputs[n], n) for n in names}
    rows = []
    for i in range(batch):
        items = {}
        for n in names:
            arr = outputs[n]
            step = math.prod(arr.shape[1:])
            items[n] = _nest(per_output[n][i * step : (i + 1) * step], arr.shape[1:])
        if len(names) == 1:
            rows.append(items[names[0]])
        else:
            rows.append("{" + ", ".join(f"{json.dumps(n)}: {items[n]}" for n in names) + "}")
    return '{\n    "predictions": [' + ", ".join(rows) + "]\n}"


def classification_response(results: list[list[tuple[str, float]]]) -> str:
    if not results:
        raise invalid("Cannot convert empty ClassificationResults to JSON")
    rows = []
    for classes in results:
        rows.append("[" + ", ".join(f"[{json.dumps(label)}, {format_float(score)}]" for label, score in classes) + "]")
    return '{\n    "results": [' + ", ".join(rows) + "]\n}"


def regression_response(values: Iterable[float]) -> str:
    values = list(values)
    if not values:
        raise invalid("Cannot convert empty RegressionResults to JSON")
    return '{\n    "results": [' + ", ".join(format_float(v) for v in values) + "]\n}"


def error_body(message: str) -> str:
    """MakeJsonFromStatus: `{ "error": "<message>" }`."""
    return '{ "error": ' + json.dumps(message) + " }"


# ------------------------------------------------------------------------------- classify / regress
def feature_values(name: str, content: Any) -> tuple[str, list[Any]]:
    """AddValueToFeature over one feature: its kind (int64 | float | bytes) and values."""
    kind: str | None = None
    values: list[Any] = []

    def want(k: str) -> None:
        nonlocal kind
        if kind is not None and kind != k:
            raise invalid(f"Unexpected element type in feature: {name} expecting type: {kind}")
        kind = k

    for val in content if isinstance(content, list) else [content]:
        if val is None or isinstance(val, list):
            raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type(val)}")
        if isinstance(val, bool):
            want("int64")
            values.append(1 if val else 0)
        elif isinstance(val, dict):
            if not is_b64_object(val):
                raise invalid(f"Feature: {name} has element with unexpected JSON type: {json_type(val)}")
            want("bytes")
            values.append(decode_b64(val))
        elif isinstance(val, str):
            want("bytes")
            values.append(val.encode("utf-8"))
        elif isinstance(val, float):
            want("float")
            if math.isfinite(val) and abs(val) > float(np.finfo(np.float32).max):
                raise _lossy(val, "float")
            values.append(val)
        else:
            want("int64")
            if val >= 1 << 63 or val < -(1 << 63):
                raise invalid(f"Feature: {name} has uint64 element. Only int64 is supported.")
            values.append(val)
    return kind or "float", values


def example_dicts(
    doc: Mapping[str, Any], method: str
) -> tuple[dict[str, tuple[str, list]] | None, list[dict[str, tuple[str, list]]]]:
    """FillClassifyRegressRequestFromJson: (context features or None, one feature dict per example)."""

    def example(val: Any) -> dict[str, tuple[str, list]]:
        if not isinstance(val, dict):
            raise invalid(f"Example must be JSON object but got JSON {json_type(val)}")
        return {k: feature_values(k, v) for k, v in val.items()}

    context = example(doc["context"]) if "context" in doc else None
    if "examples" not in doc:
        raise invalid(
            f"JSON Value: {value_text(doc)} When method is {method}, key 'examples' is expected and was not found"
        )
    examples = doc["examples"]
    if not isinstance(examples, list):
        raise invalid(f"JSON Value: {value_text(doc)} Expecting 'examples' value to be an list/array")
    if not examples:
        raise invalid(f"JSON Value: {value_text(doc)} 'examples' value is an empty array")
    return context, [example(e) for e in examples]
