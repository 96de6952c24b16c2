"""TF Serving's REST and gRPC protocol against a real server process: the embedded one always, and
tensorflow_model_server with the same tests when it is on PATH.

Each server is started by PID on 127.0.0.1 with free ports and stopped by PID. The clients here are
TF Serving's documented ones (requests, PredictionServiceStub with tf.make_tensor_proto) or raw
HTTP/gRPC: nothing of the server is imported.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.integration.serving_models import batch_model, digits_model, examples_model, multi_input_model
from tfrun.tasks.tfserving import backends, repository
from tfrun.tasks.tfserving.clients import GrpcClient, RestClient, ServingRequestError

pytestmark = pytest.mark.slow

BINARY_SKIP = (
    f"{backends.BINARY} is not on PATH here; these protocol tests run against the real TF Serving binary whenever it is"
)
MAX_REQUEST_BYTES = 1 << 20
X = (np.random.default_rng(7).random((3, 8, 8)) * 16).astype(np.float32)


def _config(root: Path) -> str:
    return f"""model_config_list {{
  config {{ name: "digits" base_path: "{root / "digits"}" model_platform: "tensorflow"
           model_version_policy {{ specific {{ versions: 1 versions: 2 }} }}
           version_labels {{ key: "stable" value: 1 }} version_labels {{ key: "canary" value: 2 }} }}
  config {{ name: "swap" base_path: "{root / "swap"}" model_platform: "tensorflow" }}
  config {{ name: "multi" base_path: "{root / "multi"}" model_platform: "tensorflow" }}
  config {{ name: "examples" base_path: "{root / "examples"}" model_platform: "tensorflow" }}
}}
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import tensorflow as tf

    root = tmp_path_factory.mktemp("repo")
    digits_model(root / "digits" / "1", seed=1, class_id=True)  # export.class_id_output=true: two outputs
    digits_model(root / "digits" / "2", seed=2)  # tfrun's default export: probabilities alone
    shutil.copytree(root / "digits" / "1", root / "swap" / "1")
    multi_input_model(root / "multi" / "1")
    examples_model(root / "examples" / "1")
    batch_model(root / "batch" / "1")
    repository.write_warmup(root / "digits" / "1", "digits", "pixels", X, records=3)
    (root / "models.config").write_text(_config(root))
    expected = {}
    for v in (1, 2):  # outputs depend on the batch size in the last bits: batch 3 and batch 1
        fn = tf.saved_model.load(str(root / "digits" / str(v))).signatures["serving_default"]
        expected[f"v{v}"] = fn(pixels=tf.constant(X))["probabilities"].numpy()
        expected[f"v{v}_one"] = fn(pixels=tf.constant(X[:1]))["probabilities"].numpy()
    assert not np.array_equal(expected["v1"], expected["v2"])
    np.savez(root / "expected.npz", **expected)
    return root


def _start(backend: str, spec: backends.ServerSpec, log: Path) -> backends.ServerProcess:
    server = backends.start(backend, spec.with_free_ports(), log_path=log, detached=False)
    try:
        backends.wait_serving(server, 120)
    except RuntimeError:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module", params=["embedded", "binary"])
def server(request: pytest.FixtureRequest, repo: Path, tmp_path_factory: pytest.TempPathFactory):
    if request.param == "binary" and backends.binary_path() is None:
        pytest.skip(BINARY_SKIP)
    spec = backends.ServerSpec(
        model_name="digits",
        base_path=repo / "digits",
        model_config_file=repo / "models.config",
        max_request_bytes=MAX_REQUEST_BYTES,
        max_load_retries=0,
    )
    log = tmp_path_factory.mktemp("logs") / f"{request.param}.log"
    proc = _start(request.param, spec, log)
    grpc_client = GrpcClient(spec.grpc_target, timeout=30)
    for name in ("digits", "swap", "multi", "examples"):
        grpc_client.wait_available(name, timeout=60, alive=proc.alive)
    proc.expected = dict(np.load(repo / "expected.npz"))  # type: ignore[attr-defined]
    yield proc
    grpc_client.close()
    code = proc.stop()
    assert not proc.alive(), "the server must be gone after stop (by PID)"
    assert code is not None


def _url(server: backends.ServerProcess, path: str) -> str:
    return f"{server.spec.rest_url}{path}"


def _assert_valid_request_answers(server: backends.ServerProcess) -> None:
    import requests

    r = requests.post(_url(server, "/v1/models/digits:predict"), json={"instances": X[:1].tolist()}, timeout=30)
    assert r.status_code == 200, r.text
    got = np.asarray(r.json()["predictions"][0], dtype=np.float32)  # one output: a bare list per instance
    assert np.array_equal(got, server.expected["v2_one"][0])


# ------------------------------------------------------------------ the documented clients, unchanged
def test_documented_grpc_client(server):
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    request = predict_pb2.PredictRequest()
    request.model_spec.name = "digits"
    request.model_spec.signature_name = "serving_default"
    input_name = "pixels"
    request.inputs[input_name].CopyFrom(tf.make_tensor_proto(X))
    channel = grpc.insecure_channel(server.spec.grpc_target)
    predict_service = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    response = predict_service.Predict(request, timeout=10.0)
    output_name = "probabilities"
    outputs_proto = response.outputs[output_name]
    y_proba = tf.make_ndarray(outputs_proto)
    assert np.array_equal(y_proba, server.expected["v2"])  # latest of the specific versions {1, 2}
    assert response.model_spec.version.value == 2 and response.model_spec.signature_name == "serving_default"
    assert outputs_proto.float_val and not outputs_proto.tensor_content, "typed fields, as TF Serving answers"
    channel.close()


def test_documented_rest_client(server):
    import requests

    server_url = _url(server, "/v1/models/digits:predict")
    request_json = json.dumps({"signature_name": "serving_default", "instances": X.tolist()})
    response = requests.post(server_url, data=request_json)
    response.raise_for_status()
    response = response.json()
    y_proba = np.array(response["predictions"])
    assert np.array_equal(y_proba.astype(np.float32), server.expected["v2"])
    # with a second output (version 1: class_id) each prediction is a dict per instance
    response = requests.post(_url(server, "/v1/models/digits/versions/1:predict"), data=request_json).json()
    y_proba = np.array([p["probabilities"] for p in response["predictions"]])
    assert np.array_equal(y_proba.astype(np.float32), server.expected["v1"])
    assert [p["class_id"] for p in response["predictions"]] == server.expected["v1"].argmax(axis=1).tolist()
    r = requests.post(server_url, json={"signature_name": "serving_default", "instances": X.tolist()})
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"


# -------------------------------------------------------------------------------- forms and APIs
def test_row_columnar_versions_and_labels(server):
    rest = RestClient(server.spec.rest_url)
    v1, v2 = server.expected["v1"], server.expected["v2"]
    assert np.array_equal(rest.predict("digits", instances=X, version=1)["probabilities"].astype(np.float32), v1)
    assert np.array_equal(rest.predict("digits", instances=X, label="stable")["probabilities"].astype(np.float32), v1)
    assert np.array_equal(rest.predict("digits", instances=X, label="canary")["output"].astype(np.float32), v2)
    col = rest.json("POST", "/v1/models/digits/versions/1:predict", {"inputs": {"pixels": X.tolist()}})
    assert np.array_equal(np.asarray(col["outputs"]["probabilities"], np.float32), v1)
    assert col["outputs"]["class_id"] == v1.argmax(axis=1).tolist()
    col = rest.json("POST", "/v1/models/digits/versions/2:predict", {"inputs": {"pixels": X.tolist()}})
    assert np.array_equal(np.asarray(col["outputs"], np.float32), v2)  # one output: the tensor itself
    g = GrpcClient(server.spec.grpc_target)
    out, version = g.predict("digits", {"pixels": X}, label="stable")
    assert version == 1 and np.array_equal(out["probabilities"], v1)
    out, version = g.predict("digits", {"pixels": X}, version=2)
    assert version == 2 and list(out) == ["probabilities"] and np.array_equal(out["probabilities"], v2)
    out, version = g.predict("digits", {"pixels": X}, version=1, output_filter=["class_id"])
    assert version == 1 and list(out) == ["class_id"] and out["class_id"].tolist() == v1.argmax(axis=1).tolist()
    g.close()


def test_multiple_inputs_strings_and_b64(server):
    rest = RestClient(server.spec.rest_url)
    doc = rest.json(
        "POST",
        "/v1/models/multi:predict",
        {
            "instances": [
                {"a": [1.5, 2], "b": 3, "name": "ann"},
                {"a": [0, 0], "b": -1, "name": {"b64": base64.b64encode(b"bo").decode()}},
            ]
        },
    )
    assert doc["predictions"] == [{"greeting": "hello ann", "total": 6.5}, {"greeting": "hello bo", "total": -1.0}]
    g = GrpcClient(server.spec.grpc_target)
    out, _ = g.predict(
        "multi",
        {"a": np.array([[1, 1]], np.float32), "b": np.array([2], np.int64), "name": np.array([b"cy"], dtype=object)},
    )
    assert out["total"].tolist() == [4.0] and out["greeting"].tolist() == [b"hello cy"]
    g.close()


def test_classify_and_regress(server):
    rest = RestClient(server.spec.rest_url)
    doc = rest.json(
        "POST", "/v1/models/examples:classify", {"signature_name": "classify_x", "examples": [{"x": 0.0}, {"x": [3.0]}]}
    )
    (neg0, pos0), (neg1, pos1) = doc["results"]
    assert neg0[0] == "neg" and pos0 == ["pos", 0.5] and pos1[1] > 0.9
    doc = rest.json(
        "POST",
        "/v1/models/examples:regress",
        {"signature_name": "regress_x", "context": {"x": 1.0}, "examples": [{}, {}]},
    )
    assert doc["results"] == [3.0, 3.0]
    from tensorflow.core.example import example_pb2
    from tensorflow_serving.apis import classification_pb2, regression_pb2

    g = GrpcClient(server.spec.grpc_target)
    request = classification_pb2.ClassificationRequest()
    request.model_spec.name, request.model_spec.signature_name = "examples", "classify_x"
    example = request.input.example_list.examples.add()
    example.features.feature["x"].float_list.value.append(-3.0)
    response = g.call(g.prediction.Classify, request)
    classes = response.result.classifications[0].classes
    assert [c.label for c in classes] == ["neg", "pos"] and classes[0].score > 0.9
    request = regression_pb2.RegressionRequest()
    request.model_spec.name, request.model_spec.signature_name = "examples", "regress_x"
    request.input.example_list.examples.add().features.feature["x"].float_list.value.append(2.0)
    assert g.call(g.prediction.Regress, request).result.regressions[0].value == 5.0
    with pytest.raises(ServingRequestError) as info:  # a predict signature cannot classify
        request = classification_pb2.ClassificationRequest()
        request.model_spec.name = "digits"
        request.input.example_list.examples.add().CopyFrom(example_pb2.Example())
        g.call(g.prediction.Classify, request)
    assert (
        info.value.code == "INVALID_ARGUMENT" and "Expected classification signature method_name" in info.value.message
    )
    g.close()


def test_status_and_metadata(server):
    rest = RestClient(server.spec.rest_url)
    raw = rest.json("GET", "/v1/models/digits/versions/1")
    assert raw == {
        "model_version_status": [
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
        ]
    }
    assert [s["version"] for s in rest.status("digits")] == [2, 1]
    meta = rest.metadata("digits", version=1)
    assert meta["model_spec"]["name"] == "digits" and meta["model_spec"]["version"] == "1"
    sig = meta["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert sig["inputs"]["pixels"]["dtype"] == "DT_FLOAT"
    assert [d["size"] for d in sig["inputs"]["pixels"]["tensor_shape"]["dim"]] == ["-1", "8", "8"]
    assert sig["method_name"] == "tensorflow/serving/predict"
    g = GrpcClient(server.spec.grpc_target)
    assert g.status("digits", 2) == [{"version": 2, "state": "AVAILABLE", "error_code": "OK", "error_message": ""}]
    from tensorflow_serving.apis import get_model_metadata_pb2

    response = g.metadata("examples")
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert {"classify_x", "regress_x", "serving_default"} <= set(signatures.signature_def)
    g.close()


# ------------------------------------------------------------------------------------ bad requests
PREDICT = "/v1/models/digits:predict"
GOOD = json.dumps({"instances": X[:1].tolist()})
# (method, path, body, HTTP status, words in the error, embedded only: our server's own wording/limits)
BAD_REQUESTS = [
    ("POST", PREDICT, "{not json", 400, "JSON Parse error", False),
    ("POST", PREDICT, "", 400, "The document is empty", False),
    ("POST", PREDICT, "[1, 2]", 400, "Is not object", False),
    (
        "POST",
        PREDICT,
        json.dumps({"instances": X[:1].tolist(), "inputs": X[:1].tolist()}),
        400,
        "expecting only one of 'inputs' or 'instances' keys to exist",
        False,
    ),
    (
        "POST",
        PREDICT,
        json.dumps({"signature_name": "serving_default"}),
        400,
        "Missing 'inputs' or 'instances' key",
        False,
    ),
    ("POST", PREDICT, json.dumps({"instances": []}), 400, "No values in 'instances' array", False),
    ("POST", PREDICT, json.dumps({"instances": [[[1, 2], [3]]]}), 400, "Encountered list at unexpected size", False),
    ("POST", PREDICT, json.dumps({"instances": np.zeros((1, 7, 8)).tolist()}), 400, "shape", True),
    ("POST", PREDICT, json.dumps({"instances": [[["a"] * 8] * 8]}), 400, "is not of expected type: float", False),
    ("POST", PREDICT, json.dumps({"instances": [[[1e300] * 8] * 8]}), 400, "without loss of precision", False),
    (
        "POST",
        PREDICT,
        json.dumps({"signature_name": 5, "instances": [1]}),
        400,
        "'signature_name' key must be a string",
        False,
    ),
    (
        "POST",
        PREDICT,
        json.dumps({"signature_name": "nope", "instances": [1]}),
        400,
        'Serving signature name: "nope" not found in signature def',
        False,
    ),
    ("POST", "/v1/models/nope:predict", GOOD, 404, "Servable not found for request: Latest(nope)", False),
    (
        "POST",
        "/v1/models/digits/versions/9:predict",
        GOOD,
        404,
        "Servable not found for request: Specific(digits, 9)",
        False,
    ),
    ("POST", "/v1/models/digits/labels/nope:predict", GOOD, 400, "Unrecognized servable version label: nope", False),
    ("POST", "/v1/models/digits/versions/x1:predict", GOOD, 400, "Malformed request", False),
    ("POST", "/v1/models/digits:explain", GOOD, 400, "Malformed request: POST /v1/models/digits:explain", False),
    ("GET", PREDICT, None, 400, "Malformed request: GET", False),
    ("PUT", "/v1/models/digits", GOOD, 400, "Malformed request: PUT", False),
    ("GET", "/v1/models", None, 400, "Missing model name in request.", False),
    ("GET", "/v1/models/nope", None, 404, "Could not find any versions of model nope", False),
    ("GET", "/v1/models/digits/versions/9", None, 404, "Could not find version 9 of model digits", False),
    ("GET", "/v1/models/nope/metadata", None, 404, "Servable not found for request", False),
    (
        "POST",
        "/v1/models/digits:classify",
        json.dumps({"examples": [{"x": 1.0}]}),
        400,
        "Expected classification signature method_name to be tensorflow/serving/classify",
        False,
    ),
    (
        "POST",
        "/v1/models/examples:regress",
        json.dumps({"signature_name": "regress_x"}),
        400,
        "key 'examples' is expected",
        False,
    ),
    ("POST", PREDICT, json.dumps({"instances": [0.0] * (MAX_REQUEST_BYTES // 4)}), 429, "exceeds the limit", True),
    ("POST", "/v2/models/digits:predict", GOOD, 404, "", True),
]


@pytest.mark.parametrize(
    "method, path, body, status, words, embedded_only",
    BAD_REQUESTS,
    ids=[f"{i:02d}-{b[4][:40] or b[1]}" for i, b in enumerate(BAD_REQUESTS)],
)
def test_bad_rest_request_gets_tf_serving_status_and_error_then_server_answers(
    server, method, path, body, status, words, embedded_only
):
    import requests

    if embedded_only and server.backend != "embedded":
        pytest.skip("checks the embedded server's own limit or wording")
    r = requests.request(method, _url(server, path), data=body, timeout=30)
    assert r.status_code == status, r.text[:300]
    if server.backend == "embedded" or status != 404:
        error = r.json()["error"]
        assert isinstance(error, str) and words in error, error
    _assert_valid_request_answers(server)


def _grpc_bad_requests():
    from tensorflow.core.framework import tensor_pb2, types_pb2
    from tensorflow_serving.apis import get_model_metadata_pb2, inference_pb2, predict_pb2

    from tfrun.tasks.tfserving.tensors import as_tensor_content, shape_proto

    def predict(name="digits", *, inputs=None, signature="serving_default", version=None, label=None, filters=()):
        r = predict_pb2.PredictRequest()
        r.model_spec.name = name
        r.model_spec.signature_name = signature
        if version is not None:
            r.model_spec.version.value = version
        if label is not None:
            r.model_spec.version_label = label
        for k, v in ({"pixels": as_tensor_content(X[:1])} if inputs is None else inputs).items():
            r.inputs[k].CopyFrom(v)
        r.output_filter.extend(filters)
        return r

    short = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto([1, 8, 8]), tensor_content=b"x" * 8
    )
    huge = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT, tensor_shape=shape_proto([1 << 40, 8, 8]))
    return [
        ("Predict", predict("nope"), "NOT_FOUND", "Servable not found for request: Latest(nope)", False),
        ("Predict", predict(version=9), "NOT_FOUND", "Specific(digits, 9)", False),
        ("Predict", predict(label="nope"), "INVALID_ARGUMENT", "Unrecognized servable version label", False),
        ("Predict", predict(signature="nope"), "FAILED_PRECONDITION", 'Serving signature key "nope" not found.', False),
        (
            "Predict",
            predict(inputs={"pixels": as_tensor_content(X[:1].astype(np.float64))}),
            "INVALID_ARGUMENT",
            "to be float but double is provided",
            False,
        ),
        (
            "Predict",
            predict(inputs={"wrong": as_tensor_content(X[:1])}),
            "INVALID_ARGUMENT",
            "input size does not match signature",
            False,
        ),
        (
            "Predict",
            predict(inputs={"pixels": as_tensor_content(np.zeros((1, 7, 8), np.float32))}),
            "INVALID_ARGUMENT",
            "shape",
            True,
        ),
        ("Predict", predict(inputs={"pixels": short}), "INVALID_ARGUMENT", "", False),
        ("Predict", predict(inputs={"pixels": huge}), "INVALID_ARGUMENT", "", True),
        (
            "Predict",
            predict(filters=["nope"]),
            "INVALID_ARGUMENT",
            "output tensor alias not found in signature: nope",
            False,
        ),
        (
            "Predict",
            predict(inputs={"pixels": as_tensor_content(np.zeros((MAX_REQUEST_BYTES // 256, 8, 8), np.float32))}),
            "RESOURCE_EXHAUSTED",
            "",
            True,
        ),
        (
            "GetModelMetadata",
            get_model_metadata_pb2.GetModelMetadataRequest(model_spec={"name": "digits"}),
            "INVALID_ARGUMENT",
            "must specify at least one metadata_field",
            False,
        ),
        ("MultiInference", inference_pb2.MultiInferenceRequest(), "UNIMPLEMENTED", "", True),
    ]


def test_bad_grpc_requests_get_tf_serving_codes_then_server_answers(server):
    g = GrpcClient(server.spec.grpc_target, retries=0)
    checked = 0
    for method, request, code, words, embedded_only in _grpc_bad_requests():
        if embedded_only and server.backend != "embedded":
            continue
        with pytest.raises(ServingRequestError) as info:
            g.call(getattr(g.prediction, method), request)
        assert info.value.code == code, (method, info.value)
        assert words in info.value.message, (method, info.value.message)
        out, version = g.predict("digits", {"pixels": X[:1]})
        assert version == 2 and np.array_equal(out["probabilities"], server.expected["v2_one"])
        checked += 1
    assert checked >= 9
    assert server.alive()
    g.close()


# ------------------------------------------------------------------------------ versions on disk
def _wait_only_available(g: GrpcClient, name: str, version: int, timeout: float = 30.0) -> None:
    """Until `version` is the one AVAILABLE version of `name` (the old one unloaded)."""
    deadline = time.monotonic() + timeout
    while [s["version"] for s in g.status(name) if s["state"] == "AVAILABLE"] != [version]:
        assert time.monotonic() < deadline, g.status(name)
        time.sleep(0.1)


def test_new_version_rolls_in_and_deleting_it_rolls_back(server, repo):
    """`swap` runs the latest policy: a copied-in version 2 takes over; setting it aside brings 1 back."""
    g = GrpcClient(server.spec.grpc_target)
    answered: list[int] = []
    failures: list[Exception] = []
    stop = threading.Event()

    def hammer() -> None:
        while not stop.is_set():
            try:
                answered.append(g.predict("swap", {"pixels": X[:1]})[1])
            except Exception as err:  # noqa: BLE001
                failures.append(err)

    worker = threading.Thread(target=hammer)
    worker.start()
    try:
        version, _, _ = repository.push(repo / "digits" / "2", repo / "swap", 2)
        assert version == 2
        g.wait_available("swap", 2, timeout=60)
        _wait_only_available(g, "swap", 2)
        mark = len(answered)
        time.sleep(0.3)
        assert set(answered[mark:]) == {2}, "after the swap every answer comes from version 2"
        repository.rollback(repo / "swap", 1)
        _wait_only_available(g, "swap", 1)
        mark = len(answered)
        time.sleep(0.3)
    finally:
        stop.set()
        worker.join(10)
        g.close()
    assert not failures, failures[:3]
    assert set(answered[mark:]) == {1}
    changes = [v for i, v in enumerate(answered) if i == 0 or answered[i - 1] != v]
    assert changes == [1, 2, 1], "1, then 2, then 1 again: no answer from an old version after a swap"


def test_reload_config_moves_labels_and_rejects_labels_on_unavailable_versions(server, repo):
    from tfrun.tasks.tfserving.config import configs_to_proto, read_model_config_file

    g = GrpcClient(server.spec.grpc_target, retries=0)
    configs = read_model_config_file(repo / "models.config")
    configs[0].labels = {"stable": 2, "canary": 1}
    g.reload_config(configs_to_proto(configs))
    _, version = g.predict("digits", {"pixels": X[:1]}, label="stable")
    assert version == 2
    configs[0].labels = {"stable": 7}
    with pytest.raises(ServingRequestError) as info:
        g.reload_config(configs_to_proto(configs))
    assert info.value.code == "FAILED_PRECONDITION" and "not currently available" in info.value.message
    configs[0].labels = {"stable": 1, "canary": 2}
    g.reload_config(configs_to_proto(configs))
    assert g.predict("digits", {"pixels": X[:1]}, label="stable")[1] == 1
    g.close()


def test_warmup_file_replayed_before_available(server):
    if server.backend != "embedded":
        pytest.skip("reads the embedded server's log line")
    log = server.log_path.read_text()
    assert "{name: digits version: 1}" in log and "3 warm-up record(s) replayed" in log


# ------------------------------------------------------------------------------------------ batching
def test_batching_merges_concurrent_requests(repo: Path, tmp_path: Path):
    backend = "embedded" if backends.binary_path() is None else "binary"
    batching = tmp_path / "batching.config"
    batching.write_text(
        "max_batch_size { value: 32 }\nbatch_timeout_micros { value: 20000 }\n"
        "num_batch_threads { value: 1 }\nmax_enqueued_batches { value: 100 }\n"
    )
    spec = backends.ServerSpec(model_name="batch", base_path=repo / "batch", batching_parameters_file=batching)
    server = _start(backend, spec, tmp_path / "batch.log")
    try:
        g = GrpcClient(spec.grpc_target)
        g.wait_available("batch", timeout=60, alive=server.alive)
        rest = RestClient(spec.rest_url)
        results: dict[int, tuple] = {}
        barrier = threading.Barrier(16)

        def call(i: int) -> None:
            x = np.full((1, 3), float(i), np.float32)
            barrier.wait()
            if i % 2:
                out, _ = g.predict("batch", {"x": x})
            else:
                out = rest.predict("batch", instances=x)
            results[i] = (np.asarray(out["y"], np.float32), int(np.asarray(out["batch"]).reshape(-1)[0]))

        threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert len(results) == 16
        for i, (y, _) in results.items():
            assert np.array_equal(y, np.full((1, 3), 2.0 * i, np.float32)), "each request gets its own rows back"
        sizes = [b for _, b in results.values()]
        assert max(sizes) > 1, f"requests were never merged into one model call: {sizes}"
        with pytest.raises(ServingRequestError) as info:  # no enable_large_batch_splitting: TF Serving rejects it
            g.predict("batch", {"x": np.ones((40, 3), np.float32)})
        assert info.value.code == "INVALID_ARGUMENT" and "larger than maximum input batch size 32" in info.value.message
        with pytest.raises(ServingRequestError) as info:  # a blocking handler's error, on the batching server too
            g.status("nope")
        assert info.value.code == "NOT_FOUND" and "Could not find any versions of model nope" in info.value.message
        assert g.predict("batch", {"x": np.ones((2, 3), np.float32)})[0]["y"].shape == (2, 3)
        g.close()
        rest.close()
    finally:
        server.stop()
    assert not server.alive()
    if backend == "embedded":  # on stop it logs how much batching merged
        line = re.search(
            r"Batching \{name: batch version: 1 signature: serving_default\}: (\d+) task\(s\) in "
            r"(\d+) batch\(es\), mean ([\d.]+) rows, largest (\d+)",
            (tmp_path / "batch.log").read_text(),
        )
        assert line, "the embedded server logs its batching summary when it stops"
        tasks, batches, largest = int(line.group(1)), int(line.group(2)), int(line.group(4))
        assert tasks >= 17 and batches < tasks and largest == max(sizes)
