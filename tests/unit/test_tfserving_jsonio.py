"""TF Serving's REST JSON rules (util/json_tensor.cc) in tfrun.tasks.tfserving.jsonio: no TensorFlow, no server."""

from __future__ import annotations

import base64
import json
import math

import numpy as np
import pytest

from tfrun.tasks.tfserving import jsonio
from tfrun.tasks.tfserving.jsonio import InputInfo
from tfrun.tasks.tfserving.status import Code, ServingError, http_status

ONE = {"pixels": InputInfo("DT_FLOAT")}
TWO = {"a": InputInfo("DT_FLOAT"), "b": InputInfo("DT_INT64")}


def parse(body: str | bytes, inputs=ONE):
    raw = body.encode() if isinstance(body, str) else body
    doc = jsonio.parse_document(raw)
    jsonio.signature_name(doc)
    return jsonio.predict_inputs(doc, inputs, has_bools=b"true" in raw or b"false" in raw)


def error(body: str | bytes, inputs=ONE) -> ServingError:
    with pytest.raises(ServingError) as info:
        parse(body, inputs)
    return info.value


# ----------------------------------------------------------------------------------- request forms
def test_row_format_batches_instances_on_a_new_first_dimension():
    inputs, fmt = parse('{"instances": [[[1, 2], [3, 4]], [[5, 6], [7, 8.5]]]}')
    assert fmt == jsonio.ROW
    assert inputs["pixels"].dtype == np.float32 and inputs["pixels"].shape == (2, 2, 2)
    assert inputs["pixels"][1, 1, 1] == np.float32(8.5)


def test_row_format_with_named_inputs_and_columnar_format():
    inputs, fmt = parse('{"instances": [{"a": [1.5, 2], "b": 3}, {"a": [4, 5], "b": 6}]}', TWO)
    assert fmt == jsonio.ROW and inputs["a"].shape == (2, 2) and inputs["b"].tolist() == [3, 6]
    assert inputs["b"].dtype == np.int64
    inputs, fmt = parse('{"inputs": {"a": [[1, 2]], "b": [7]}}', TWO)
    assert fmt == jsonio.COLUMNAR and inputs["a"].shape == (1, 2) and inputs["b"].tolist() == [7]
    inputs, fmt = parse('{"inputs": [[1, 2, 3]]}')
    assert fmt == jsonio.COLUMNAR and inputs["pixels"].shape == (1, 3)


def test_b64_strings_and_nan_infinity_tokens():
    blob = bytes(range(256))
    inputs, _ = parse(
        json.dumps({"instances": [{"b64": base64.b64encode(blob).decode()}, "text"]}), {"x": InputInfo("DT_STRING")}
    )
    assert inputs["x"].tolist() == [blob, b"text"]
    inputs, _ = parse('{"inputs": [NaN, Infinity, -Infinity]}')
    values = inputs["pixels"]
    assert math.isnan(values[0]) and values[1] == np.inf and values[2] == -np.inf


def test_float_values_are_exact_and_bools_are_not_numbers():
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    inputs, _ = parse(json.dumps({"instances": x.tolist()}))
    assert np.array_equal(inputs["pixels"], x)
    err = error('{"instances": [[1.0, true]]}')
    assert "Type: True is not of expected type: float" in err.message


# ------------------------------------------------------------------------------------------ errors
ERRORS = [
    ("", "JSON Parse error: The document is empty"),
    ("{not json", "JSON Parse error"),
    ("[1, 2]", "Is not object"),
    ('{"signature_name": 7, "instances": [1]}', "'signature_name' key must be a string value."),
    ('{"instances": [[1]], "inputs": [[1]]}', "expecting only one of 'inputs' or 'instances' keys to exist"),
    ('{"signature_name": "serving_default"}', "Missing 'inputs' or 'instances' key"),
    ('{"instances": {"pixels": 1}}', "Excepting 'instances' to be an list/array"),
    ('{"instances": []}', "No values in 'instances' array"),
    ('{"instances": [[1, 2], [3]]}', "Expecting tensor size: 2 but got: 1"),
    ('{"instances": [[[1, 2]], [[3], [4]]]}', "Expecting shape [1,2] but got: [2,1]"),
    ('{"instances": [["a", "b"]]}', 'JSON Value: "a" Type: String is not of expected type: float'),
    ('{"instances": [[1e300]]}', "Cannot convert JSON value: 1e+300 to float without loss of precision."),
    ('{"instances": [[16777217]]}', "to float without loss of precision."),
    ('{"instances": [[1, [2]]]}', "Encountered list at unexpected level"),
    ('{"instances": [[[1], 2]]}', "found at incorrect level"),
]


@pytest.mark.parametrize("body, message", ERRORS)
def test_bad_payloads_are_invalid_argument_with_tf_serving_messages(body: str, message: str):
    err = error(body)
    assert err.code is Code.INVALID_ARGUMENT and http_status(err.code) == 400
    assert message in err.message, err.message


def test_named_input_errors():
    assert "keys must be equal to: a,b" in error('{"instances": [{"a": [1, 2]}]}', TWO).message
    assert "does not have named input: c" in error('{"instances": [{"a": [1], "b": 1, "c": 2}]}', TWO).message
    assert "instances is a plain list, but expecting list of objects" in error('{"instances": [[1]]}', TWO).message
    assert "Missing named input: b in 'inputs' object." in error('{"inputs": {"a": [1]}}', TWO).message
    assert (
        "not formatted correctly for base64 data"
        not in error('{"instances": [1.5]}', {"x": InputInfo("DT_INT32")}).message
    )
    assert "is not of expected type: int32" in error('{"instances": [1.5]}', {"x": InputInfo("DT_INT32")}).message
    assert "Unable to base64 decode" in error('{"instances": [{"b64": "%%%"}]}', {"x": InputInfo("DT_STRING")}).message


def test_unsupported_dtype_is_unimplemented():
    with pytest.raises(ServingError) as info:
        jsonio.to_tensor([1.0], "DT_COMPLEX64")
    assert info.value.code is Code.UNIMPLEMENTED and http_status(info.value.code) == 501


# --------------------------------------------------------------------------------------- responses
def test_floats_are_written_like_tf_serving():
    assert jsonio.format_float(0.5) == "0.5"
    assert jsonio.format_float(3.0) == "3.0"  # whole numbers get .0
    assert jsonio.format_float(float(np.float32(0.1))) == "0.1"  # %g reads back to the same float32
    assert jsonio.format_float(float(np.float32(0.123456789))) == "0.123456791"  # else 9 digits
    assert jsonio.format_float(1e-5) == "1e-05"
    assert jsonio.format_float(float("nan")) == "NaN" and jsonio.format_float(float("-inf")) == "-Infinity"
    x = np.random.default_rng(1).random(1000).astype(np.float32)
    tokens = jsonio.float_tokens(x)
    assert tokens == [jsonio.format_float(float(v)) for v in x]
    assert np.array_equal(np.array([float(t) for t in tokens], dtype=np.float32), x)


def test_row_and_columnar_responses():
    outputs = {
        "probabilities": np.array([[0.25, 0.75], [1.0, 0.0]], dtype=np.float32),
        "class_id": np.array([1, 0], dtype=np.int64),
    }
    row = json.loads(jsonio.predict_response(outputs, jsonio.ROW))
    assert row == {
        "predictions": [{"class_id": 1, "probabilities": [0.25, 0.75]}, {"class_id": 0, "probabilities": [1.0, 0.0]}]
    }
    col = json.loads(jsonio.predict_response(outputs, jsonio.COLUMNAR))
    assert col == {"outputs": {"class_id": [1, 0], "probabilities": [[0.25, 0.75], [1.0, 0.0]]}}
    single = json.loads(jsonio.predict_response({"y": np.array([[1.5]], dtype=np.float32)}, jsonio.ROW))
    assert single == {"predictions": [[1.5]]}
    blob = json.loads(jsonio.predict_response({"out_bytes": np.array([b"\x00\xff"], dtype=object)}, jsonio.ROW))
    assert blob == {"predictions": [{"b64": base64.b64encode(b"\x00\xff").decode()}]}
    with pytest.raises(ServingError, match="inconsistent batch size"):
        jsonio.predict_response({"a": np.zeros((2, 1)), "b": np.zeros((3,))}, jsonio.ROW)
    assert json.loads(jsonio.error_body('bad "quote"')) == {"error": 'bad "quote"'}


def test_tensor_json_is_exact_and_short():
    rng = np.random.default_rng(2)
    for arr in (
        rng.normal(size=(3, 4, 5)).astype(np.float32),
        rng.normal(size=(7,)),
        np.round(rng.random((2, 8, 8)) * 16).astype(np.float32),
        rng.integers(-5, 5, (3, 2)),
        np.array([True, False]),
        np.zeros((2, 0), np.float32),
    ):
        back = np.asarray(json.loads(jsonio.tensor_json(arr)), dtype=arr.dtype)
        assert back.shape == arr.shape and np.array_equal(back, arr)
    assert jsonio.tensor_json(np.array([[1.0, 2.0]], np.float32)) == "[[1,2]]"
    assert jsonio.tensor_json(np.array([np.nan], np.float32)) == "[NaN]"


def test_classify_examples_from_json():
    context, examples = jsonio.example_dicts(
        {
            "context": {"lang": "en"},
            "examples": [
                {"x": 1.5, "tags": ["a", "b"], "n": [1, 2], "flag": True},
                {"x": [2.5], "raw": {"b64": base64.b64encode(b"\x01").decode()}},
            ],
        },
        "classify",
    )
    assert context == {"lang": ("bytes", [b"en"])}
    assert examples[0] == {
        "x": ("float", [1.5]),
        "tags": ("bytes", [b"a", b"b"]),
        "n": ("int64", [1, 2]),
        "flag": ("int64", [1]),
    }
    assert examples[1]["raw"] == ("bytes", [b"\x01"])
    with pytest.raises(ServingError, match="key 'examples' is expected"):
        jsonio.example_dicts({"instances": []}, "classify")
    with pytest.raises(ServingError, match="Unexpected element type in feature: x expecting type: float"):
        jsonio.example_dicts({"examples": [{"x": [1.5, "s"]}]}, "regress")
