"""fake-vertex with Vertex's prebuilt TensorFlow image: the deploy runs the real `tfrun-serve --vertex`.

A model uploaded with `.../vertex-ai/prediction/tf2-cpu...` and no command is served by tfrun-serve (the
stand-in for the image's TF Serving), which fetches the SavedModel from the GCS emulator. Online predict,
a jsonl batch job and a tf-record batch job of serialized tf.Examples (sent as {"b64": ...}, as Vertex does).
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from tests.fakes.vertex.fixture import init_sdk, reset_sdk
from tests.fakes.vertex.gcsio import tfrecord_bytes
from tests.helpers import LazyModule, requires
from tests.integration.serving_models import batch_model

pytestmark = [pytest.mark.slow, requires("google.cloud.aiplatform")]

aiplatform = LazyModule("google.cloud.aiplatform")
exceptions = LazyModule("google.api_core.exceptions")
storage = LazyModule("google.cloud.storage")
credentials = LazyModule("google.auth.credentials")

TF_IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"


def examples_linear_model(path: Path) -> None:
    """serving_default: serialized tf.Example strings (feature x: float) -> y = 2x + 1."""
    import tensorflow as tf

    class Examples(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, examples):
            x = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([], tf.float32)})["x"]
            return {"y": 2.0 * x + 1.0}

    module = Examples()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve.get_concrete_function()})


def example_bytes(x: float) -> bytes:
    import tensorflow as tf

    feature = {"x": tf.train.Feature(float_list=tf.train.FloatList(value=[x]))}
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def upload_dir(bucket, local: Path, prefix: str) -> str:
    for path in sorted(p for p in local.rglob("*") if p.is_file()):
        bucket.blob(f"{prefix}/{path.relative_to(local).as_posix()}").upload_from_filename(str(path))
    return f"gs://{bucket.name}/{prefix}"


def results(job) -> list[dict]:
    return [
        json.loads(line)
        for blob in job.iter_outputs()
        if "prediction.results-" in blob.name
        for line in blob.download_as_text().splitlines()
    ]


def test_prebuilt_tf_image_runs_tfrun_serve(fake_vertex, gcs_emulator, tmp_path, monkeypatch):
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)
    monkeypatch.setattr("google.cloud.aiplatform.jobs._JOB_WAIT_TIME", 0.5)
    client = storage.Client(
        project="fake-proj",
        credentials=credentials.AnonymousCredentials(),
        client_options={"api_endpoint": gcs_emulator.url},
    )
    bucket = client.create_bucket(f"fvtf-{uuid.uuid4().hex[:12]}")
    batch_model(tmp_path / "batch")
    examples_linear_model(tmp_path / "examples")
    batch_uri = upload_dir(bucket, tmp_path / "batch", "models/batch")
    examples_uri = upload_dir(bucket, tmp_path / "examples", "models/examples")
    init_sdk(fake_vertex)
    try:
        with pytest.raises(exceptions.BadRequest, match="exactly one of: .saved_model.pb"):
            aiplatform.Model.upload(
                display_name="wrong-folder",
                artifact_uri=f"gs://{bucket.name}/models",
                serving_container_image_uri=TF_IMAGE,
            )
        model = aiplatform.Model.upload(
            display_name="tf-batch", artifact_uri=batch_uri, serving_container_image_uri=TF_IMAGE
        )
        endpoint = aiplatform.Endpoint.create(display_name="tf-endpoint")
        model.deploy(endpoint=endpoint, machine_type="n1-standard-4")
        (container,) = fake_vertex.state()["containers"]
        assert container["argv"][0].endswith("tfrun-serve") and container["argv"][1:] == ["--vertex"]
        answer = endpoint.predict(instances=[[1.0, 2.0, 3.0], [0.5, 0.0, -1.0]])
        assert answer.predictions == [{"y": [2.0, 4.0, 6.0], "batch": 2}, {"y": [1.0, 0.0, -2.0], "batch": 2}]
        with pytest.raises(exceptions.BadRequest):
            endpoint.predict(instances=[[1.0, 2.0]])  # TF Serving's 400 passed on
        endpoint.undeploy_all()
        endpoint.delete()

        bucket.blob("in/rows.jsonl").upload_from_string("[1, 1, 1]\n[2, 2, 2]\n[3, 3, 3]\n")
        job = model.batch_predict(
            job_display_name="tf-jsonl",
            gcs_source=f"gs://{bucket.name}/in/rows.jsonl",
            gcs_destination_prefix=f"gs://{bucket.name}/out",
            machine_type="n1-standard-4",
            batch_size=2,
        )
        assert [line["prediction"] for line in results(job)] == [
            {"y": [2.0, 2.0, 2.0], "batch": 2},
            {"y": [4.0, 4.0, 4.0], "batch": 2},
            {"y": [6.0, 6.0, 6.0], "batch": 1},
        ]

        examples = aiplatform.Model.upload(
            display_name="tf-examples", artifact_uri=examples_uri, serving_container_image_uri=TF_IMAGE
        )
        bucket.blob("in/examples.tfrecord").upload_from_string(tfrecord_bytes([example_bytes(x) for x in (0.0, 1.5)]))
        job = examples.batch_predict(
            job_display_name="tf-records",
            instances_format="tf-record",
            gcs_source=f"gs://{bucket.name}/in/examples.tfrecord",
            gcs_destination_prefix=f"gs://{bucket.name}/out",
            machine_type="n1-standard-4",
        )
        assert [line["prediction"] for line in results(job)] == [1.0, 4.0]
        assert fake_vertex.state()["containers"] == []
    finally:
        reset_sdk()
