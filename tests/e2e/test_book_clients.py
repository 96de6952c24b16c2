"""The book's client code (Hands-On ML, 3rd ed., chapter 19) runs unchanged against a tfrun export (deployed).

Each snippet expects `serving_default` to answer a probability matrix, one row per instance:
  TF Serving REST   y_proba = np.array(response["predictions"])
  TF Serving gRPC   y_proba = tf.make_ndarray(response.outputs[output_name])
  Vertex online     np.round(response.predictions, 2)
  Vertex batch      y_proba = json.loads(line)["prediction"]; np.argmax(y_probas, axis=1)
The export's default signature has that one output (`probabilities`); `export.class_id_output=true`
adds `class_id`, which turns every answer into a dict per instance.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.fakes.vertex.fixture import init_sdk, reset_sdk
from tests.helpers import copy_trained, read_record, run_tfrun_cloud

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

# The suite's shared trained run, deployed (job=deploy): these tests are about the book's clients, not training.
DEPLOY = ["job=deploy", "source=runs/train"]
PROJECT = "tfrun-book"


def x_new() -> np.ndarray:
    """Three digits as the model takes them: raw 8x8 pixels (0-16), float32."""
    from sklearn.datasets import load_digits

    return load_digits().images[:3].astype(np.float32)


def exported_probabilities(workdir: Path, record: dict[str, Any], x: np.ndarray) -> np.ndarray:
    import tensorflow as tf

    if record["job"] == "deploy":  # the SavedModel it deployed
        path = record["source"]["saved_model"]
    else:
        path = next(a["path"] for a in record["artifacts"] if a["kind"] == "saved_model")
    serve = tf.saved_model.load(str(workdir / path)).signatures["serving_default"]
    return serve(pixels=tf.constant(x))["probabilities"].numpy()


def test_tf_serving_rest_and_grpc_clients_unchanged(trained_digits: Path, workdir: Path):
    copy_trained(trained_digits, workdir)
    proc = run_tfrun_cloud(
        [
            "target=tfserving",
            "target.server=embedded",
            "target.keep_running=true",
            "target.latency_requests=10",
            *DEPLOY,
        ],
        workdir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    entry = next(d for d in record["deployments"] if d["kind"] == "tfserving")
    try:
        assert entry["parity"]["passed"], entry["parity"]
        X_new = x_new()
        expected = exported_probabilities(workdir, record, X_new)

        # --- the book's REST client, unchanged
        import requests

        request_json = json.dumps({"signature_name": "serving_default", "instances": X_new.tolist()})
        server_url = entry["predict_url"]
        response = requests.post(server_url, data=request_json)
        response.raise_for_status()  # raise an exception in case of error
        response = response.json()
        y_proba = np.array(response["predictions"])
        assert y_proba.round(2).shape == (3, 10)
        assert np.array_equal(y_proba.astype(np.float32), expected)

        # --- the book's gRPC client, unchanged (output_name = model.output_names[0])
        import grpc
        import tensorflow as tf
        from tensorflow_serving.apis import prediction_service_pb2_grpc
        from tensorflow_serving.apis.predict_pb2 import PredictRequest

        request = PredictRequest()
        request.model_spec.name = "digits_mlp"
        request.model_spec.signature_name = "serving_default"
        input_name = "pixels"
        request.inputs[input_name].CopyFrom(tf.make_tensor_proto(X_new))
        channel = grpc.insecure_channel(entry["grpc_target"])
        predict_service = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        response = predict_service.Predict(request, timeout=10.0)
        output_name = "probabilities"
        outputs_proto = response.outputs[output_name]
        y_proba = tf.make_ndarray(outputs_proto)
        channel.close()
        assert list(response.outputs) == ["probabilities"]
        assert np.array_equal(y_proba, expected)
    finally:
        os.kill(entry["server_pid"], signal.SIGTERM)


def test_vertex_online_client_unchanged(trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    copy_trained(trained_digits, workdir)
    proc = run_tfrun_cloud(
        [
            "target=vertex_endpoint",
            "target.latency_requests=3",
            *DEPLOY,
            "cloud=gcp",
            f"cloud.project={PROJECT}",
            "cloud.bucket=book-online",
            f"cloud.api_endpoint={fake_vertex.url}",
            f"cloud.storage_endpoint={gcs_emulator.url}",
            "cloud.credentials=anonymous",
        ],
        workdir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    entry = next(d for d in record["deployments"] if d["kind"] == "vertex_endpoint")
    X_new = x_new()
    from google.cloud import aiplatform

    init_sdk(fake_vertex, project=PROJECT)
    try:
        endpoint = aiplatform.Endpoint(entry["endpoint"])
        # --- the book's online prediction, unchanged
        response = endpoint.predict(instances=X_new.tolist())
        rounded = np.round(response.predictions, 2)
    finally:
        reset_sdk()
    assert rounded.shape == (3, 10)
    assert np.array_equal(np.asarray(response.predictions, np.float32), exported_probabilities(workdir, record, X_new))


def test_vertex_batch_client_unchanged(trained_digits: Path, workdir: Path):
    copy_trained(trained_digits, workdir)
    proc = run_tfrun_cloud(["target=vertex_batch", "target.mode=local", *DEPLOY], workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    batch = next(d for d in record["deployments"] if d["kind"] == "vertex_batch")["batch"]
    instances: list[Any] = []
    # --- the book's reading of the batch job's output, unchanged (files instead of blobs)
    y_probas = []
    for blob in sorted((workdir / "runs" / "r" / "vertex_batch" / "output").rglob("prediction.*")):
        if "prediction.results" in blob.name:
            for line in blob.read_text().splitlines():
                y_proba = json.loads(line)["prediction"]
                y_probas.append(y_proba)
                instances.append(json.loads(line)["instance"])
    y_pred = np.argmax(y_probas, axis=1)
    assert np.asarray(y_probas).shape == (batch["examples"], 10)
    expected = exported_probabilities(workdir, record, np.asarray(instances, np.float32))
    assert np.array_equal(y_pred, expected.argmax(axis=1))
