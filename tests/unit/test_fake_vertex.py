"""fake-vertex driven by the real google-cloud-aiplatform SDK (REST transport), with the echo stand-in container.

No TensorFlow: the serving container is tests/fakes/vertex/echo_container.py (predictions = w·x + b from a
model.json in the GCS emulator), given through containerSpec.command as a custom container would be.
"""

from __future__ import annotations

import gzip
import json
import sys
import time
from types import SimpleNamespace

import pytest
import requests

from tests.fakes.processes import gone as _gone
from tests.fakes.vertex.fixture import sdk_with_bucket, start_fake_vertex
from tests.fakes.vertex.gcsio import tfrecord_bytes
from tests.helpers import LazyModule, requires

pytestmark = requires("google.cloud.aiplatform")

aiplatform = LazyModule("google.cloud.aiplatform")
exceptions = LazyModule("google.api_core.exceptions")
jobs = LazyModule("google.cloud.aiplatform.jobs")

ECHO = [sys.executable, "-m", "tests.fakes.vertex.echo_container"]
PROJECT = "fake-proj"


def _status(excinfo: pytest.ExceptionInfo) -> str:
    """The canonical status of an HTTP error: over REST the SDK raises by HTTP status (400 -> BadRequest)."""
    return excinfo.value.response.json()["error"]["status"]


@pytest.fixture
def vertex(fake_vertex, gcs_emulator, monkeypatch):
    """aiplatform.init against the fake, a bucket with two echo models' weights, quick job polling."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_emulator.url)  # BatchPredictionJob.iter_outputs' client
    with sdk_with_bucket(fake_vertex, gcs_emulator, monkeypatch, "fv", PROJECT) as (_client, bucket):
        bucket.blob("models/a/model.json").upload_from_string(json.dumps({"weights": [1.0, 2.0], "bias": 0.5}))
        bucket.blob("models/b/model.json").upload_from_string(json.dumps({"weights": [10.0, 0.0], "bias": 0.0}))
        yield SimpleNamespace(fake=fake_vertex, bucket=bucket, gs=f"gs://{bucket.name}")


def upload(v, name: str, folder: str = "a", **kwargs) -> "aiplatform.Model":
    options = dict(serving_container_image_uri="example.com/echo:1", serving_container_command=ECHO)
    options.update(kwargs)
    return aiplatform.Model.upload(display_name=name, artifact_uri=f"{v.gs}/models/{folder}", **options)


def test_deploy_canary_predict_undeploy_delete(vertex):
    model_a = upload(
        vertex,
        "echo-a",
        labels={"team": "fv"},
        serving_container_args=["--port", "$(AIP_HTTP_PORT)"],
        serving_container_environment_variables={"GREETING": "on $(AIP_HTTP_PORT)"},
    )
    assert model_a.resource_name.startswith("projects/") and PROJECT not in model_a.resource_name  # a number
    assert model_a.container_spec.command == ECHO and model_a.labels == {"team": "fv"}
    assert model_a.uri == f"{vertex.gs}/models/a"
    endpoint = aiplatform.Endpoint.create(display_name="fv-endpoint", labels={"team": "fv"})

    started = time.perf_counter()
    model_a.deploy(
        endpoint=endpoint,
        machine_type="n1-standard-2",
        min_replica_count=1,
        max_replica_count=2,
        traffic_percentage=100,
    )
    deploy_seconds = time.perf_counter() - started
    (deployed_a,) = endpoint.list_models()
    assert deployed_a.dedicated_resources.machine_spec.machine_type == "n1-standard-2"
    assert (deployed_a.dedicated_resources.min_replica_count, deployed_a.dedicated_resources.max_replica_count) == (
        1,
        2,
    )
    assert endpoint.traffic_split == {deployed_a.id: 100}

    (container,) = vertex.fake.state()["containers"]
    endpoint_id = endpoint.resource_name.rsplit("/", 1)[-1]
    env = container["env"]
    assert env["AIP_HEALTH_ROUTE"] == f"/v1/endpoints/{endpoint_id}/deployedModels/{deployed_a.id}"
    assert env["AIP_PREDICT_ROUTE"] == env["AIP_HEALTH_ROUTE"] + ":predict"
    assert env["AIP_STORAGE_URI"] == env["AIP_MODEL_DIR"] == f"{vertex.gs}/models/a"
    assert env["AIP_DEPLOYED_MODEL_ID"] == deployed_a.id and env["AIP_ENDPOINT_ID"] == endpoint_id
    assert env["AIP_PROJECT_NUMBER"] == endpoint.resource_name.split("/")[1]
    assert env["AIP_MACHINE_TYPE"] == "n1-standard-2"
    assert env["STORAGE_EMULATOR_HOST"] == vertex.fake.storage_endpoint
    assert env["GREETING"] == f"on {env['AIP_HTTP_PORT']}"
    assert container["argv"][-2:] == ["--port", env["AIP_HTTP_PORT"]]  # $(VAR) expanded in args

    answer = endpoint.predict(instances=[[1, 1], [2, 0]], parameters={"scale": 2})
    assert answer.predictions == [7.0, 5.0]
    assert answer.deployed_model_id == deployed_a.id and answer.model_resource_name == model_a.resource_name
    assert answer.model_version_id == "1"
    raw = requests.post(
        f"{vertex.fake.url}/v1/{endpoint.resource_name}:rawPredict",
        data=json.dumps({"instances": [[0, 1]]}),
        headers={"Content-Type": "application/json"},
    )
    assert raw.json() == {"predictions": [2.5]} and raw.headers["X-Vertex-AI-Deployed-Model-Id"] == deployed_a.id

    # a 20 % canary: the SDK scales the first model to 80 and sends "0" for the new one
    model_b = upload(vertex, "echo-b", folder="b")
    model_b.deploy(endpoint=endpoint, machine_type="n1-standard-2", traffic_percentage=20)
    deployed_b = next(d for d in endpoint.list_models() if d.id != deployed_a.id)
    assert endpoint.traffic_split == {deployed_a.id: 80, deployed_b.id: 20}
    seen = {endpoint.predict(instances=[[1, 0]]).deployed_model_id for _ in range(60)}
    assert seen == {deployed_a.id, deployed_b.id}
    endpoint.update(traffic_split={deployed_a.id: 0, deployed_b.id: 100})  # PATCH ...?updateMask=trafficSplit
    assert {endpoint.predict(instances=[[1, 0]]).deployed_model_id for _ in range(5)} == {deployed_b.id}
    endpoint.update(traffic_split={deployed_a.id: 80, deployed_b.id: 20})

    # Vertex's rule: a model with traffic goes only with a split that moves its traffic (or when it is last)
    undeploy = endpoint.api_client.undeploy_model
    with pytest.raises(exceptions.BadRequest, match="traffic") as refused:
        undeploy(endpoint=endpoint.resource_name, deployed_model_id=deployed_a.id).result()
    assert _status(refused) == "FAILED_PRECONDITION"
    with pytest.raises(exceptions.BadRequest, match="traffic") as refused:
        undeploy(
            endpoint=endpoint.resource_name,
            deployed_model_id=deployed_a.id,
            traffic_split={deployed_a.id: 50, deployed_b.id: 50},
        ).result()
    assert _status(refused) == "FAILED_PRECONDITION"
    with pytest.raises(exceptions.BadRequest, match="sum to 100") as refused:
        undeploy(
            endpoint=endpoint.resource_name, deployed_model_id=deployed_a.id, traffic_split={deployed_b.id: 90}
        ).result()
    assert _status(refused) == "INVALID_ARGUMENT"
    with pytest.raises(exceptions.BadRequest, match="is deployed or being deployed") as refused:
        model_b.delete()
    assert _status(refused) == "FAILED_PRECONDITION"
    with pytest.raises(exceptions.BadRequest, match="undeploy them") as refused:
        endpoint.delete()
    assert _status(refused) == "FAILED_PRECONDITION"
    assert len(endpoint.list_models()) == 2

    pid_b = next(c["pid"] for c in vertex.fake.state()["containers"] if c["key"] == deployed_b.id)
    endpoint.undeploy(deployed_b.id)  # the SDK sends {a: 100}
    assert endpoint.traffic_split == {deployed_a.id: 100}
    assert _gone(pid_b)
    assert {endpoint.predict(instances=[[1, 0]]).deployed_model_id for _ in range(5)} == {deployed_a.id}

    pid_a = vertex.fake.state()["containers"][0]["pid"]
    endpoint.undeploy_all()
    assert _gone(pid_a) and vertex.fake.state()["containers"] == []
    assert endpoint.list_models() == [] and endpoint.traffic_split == {}
    with pytest.raises(exceptions.BadRequest, match="no deployed model") as refused:
        endpoint.predict(instances=[[1, 0]])
    assert _status(refused) == "FAILED_PRECONDITION"
    endpoint.delete()
    model_a.delete()
    model_b.delete()
    assert aiplatform.Endpoint.list() == [] and aiplatform.Model.list() == []
    assert deploy_seconds < 10


def test_list_filters(vertex):
    first = aiplatform.Endpoint.create(display_name="fv-one", labels={"env": "dev"})
    aiplatform.Endpoint.create(display_name="fv-two", labels={"env": "prod"})
    upload(vertex, "fv-model", labels={"env": "dev"})
    assert [e.resource_name for e in aiplatform.Endpoint.list(filter='display_name="fv-one"')] == [first.resource_name]
    assert [e.display_name for e in aiplatform.Endpoint.list(filter='labels.env="dev"')] == ["fv-one"]
    assert sorted(e.display_name for e in aiplatform.Endpoint.list(filter='labels.env:* AND NOT displayName="x"')) == [
        "fv-one",
        "fv-two",
    ]
    assert [m.display_name for m in aiplatform.Model.list(filter='display_name="fv-model" AND labels.env="dev"')] == [
        "fv-model"
    ]
    assert aiplatform.Model.list(filter='display_name="nope"') == []
    with pytest.raises(exceptions.BadRequest, match="Unsupported field"):
        aiplatform.Endpoint.list(filter='colour="red"')
    by_id = aiplatform.Endpoint(first.resource_name.replace(first.resource_name.split("/")[1], PROJECT))
    assert by_id.resource_name == first.resource_name  # a project id in the path answers with the number


def _outputs(job) -> tuple[list[dict], list[str]]:
    lines, names = [], []
    for blob in job.iter_outputs():
        names.append(blob.name.rsplit("/", 1)[-1])
        if "prediction.results-" in blob.name:
            lines += [json.loads(line) for line in blob.download_as_text().splitlines()]
    return lines, sorted(names)


def test_batch_predict_jsonl_and_tfrecord(vertex):
    model = upload(vertex, "echo-batch")
    instances = [[1, 1], [2, 0], [0, 3], [1, 2, 3], [5, 5], "{oops"]  # the 4th does not fit, the 6th is no JSON
    vertex.bucket.blob("in/part-0.jsonl").upload_from_string("".join(json.dumps(i) + "\n" for i in instances[:3]))
    vertex.bucket.blob("in/part-1.jsonl").upload_from_string(
        "".join(json.dumps(i) + "\n" for i in instances[3:5]) + "{oops\n"
    )

    started = time.perf_counter()
    job = model.batch_predict(
        job_display_name="fv-jsonl",
        gcs_source=f"{vertex.gs}/in/*.jsonl",
        gcs_destination_prefix=f"{vertex.gs}/out",
        instances_format="jsonl",
        machine_type="n1-standard-2",
        starting_replica_count=1,
        max_replica_count=1,
        batch_size=1,
        model_parameters={"scale": 1},
    )
    batch_seconds = time.perf_counter() - started
    assert job.state == jobs.gca_job_state.JobState.JOB_STATE_SUCCEEDED
    assert job.output_info.gcs_output_directory.startswith(f"{vertex.gs}/out/prediction-echo-batch-")
    lines, names = _outputs(job)
    assert names == [
        "prediction.errors_stats-00000-of-00001",
        "prediction.results-00000-of-00002",
        "prediction.results-00001-of-00002",
    ]
    assert [line["instance"] for line in lines] == instances
    assert [line.get("prediction") for line in lines] == [3.5, 2.5, 6.5, None, 15.5, None]
    assert "3 values" in lines[3]["error"]["message"] and "Invalid JSON" in lines[5]["error"]["message"]
    assert (job.completion_stats.successful_count, job.completion_stats.failed_count) == (4, 2)

    records = tfrecord_bytes([json.dumps(i).encode() for i in ([1, 1], [4, 4])])
    vertex.bucket.blob("in/data.tfrecord").upload_from_string(records)
    vertex.bucket.blob("in/data.tfrecord.gz").upload_from_string(gzip.compress(records))
    for fmt, source in (("tf-record", "data.tfrecord"), ("tf-record-gzip", "data.tfrecord.gz")):
        job = model.batch_predict(
            job_display_name="fv-tfrecord",
            gcs_source=f"{vertex.gs}/in/{source}",
            gcs_destination_prefix=f"{vertex.gs}/out-{fmt}",
            instances_format=fmt,
            machine_type="n1-standard-2",
        )
        lines, _ = _outputs(job)
        assert [line["prediction"] for line in lines] == [3.5, 12.5]
        assert all(set(line["instance"]) == {"b64"} for line in lines)  # records are sent as {"b64": ...}
    assert vertex.fake.state()["containers"] == []  # each job's container is stopped when the job ends
    assert batch_seconds < 10

    assert [j.display_name for j in aiplatform.BatchPredictionJob.list(filter='display_name="fv-jsonl"')] == [
        "fv-jsonl"
    ]
    assert len(aiplatform.BatchPredictionJob.list(filter='state="JOB_STATE_SUCCEEDED"')) == 3
    with pytest.raises(exceptions.BadRequest, match="dedicated_resources"):
        model.batch_predict(
            job_display_name="no-machine",
            gcs_source=f"{vertex.gs}/in/data.tfrecord",
            gcs_destination_prefix=f"{vertex.gs}/out",
            instances_format="tf-record",
        )


def test_failures_injected_and_real(vertex):
    fake = vertex.fake
    model = upload(vertex, "echo-fail")
    endpoint = aiplatform.Endpoint.create(display_name="fv-fail")

    fake.fail("POST", r":deployModel$", mode="operation", code="RESOURCE_EXHAUSTED", message="quota exceeded")
    with pytest.raises(exceptions.ResourceExhausted, match="quota exceeded"):
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    crashing = upload(vertex, "echo-crash", serving_container_environment_variables={"ECHO_EXIT_CODE": "3"})
    with pytest.raises(exceptions.FailedPrecondition, match="exited unexpectedly .exit code 3"):
        crashing.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    no_command = upload(
        vertex,
        "no-command",
        serving_container_command=None,
        serving_container_image_uri="us-docker.pkg.dev/acme/serving/custom:1",
    )
    with pytest.raises(exceptions.FailedPrecondition, match="Failed to pull image"):
        no_command.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    slow = upload(
        vertex,
        "echo-slow",
        serving_container_environment_variables={"ECHO_LOAD_SECONDS": "30"},
        serving_container_deployment_timeout=1,
    )
    with pytest.raises(exceptions.FailedPrecondition, match="never became ready within 1 s"):
        slow.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    with pytest.raises(exceptions.BadRequest, match="not supported for machine type"):
        model.deploy(
            endpoint=endpoint, machine_type="e2-standard-4", accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1
        )
    with pytest.raises(exceptions.BadRequest, match="Machine type"):
        model.deploy(endpoint=endpoint, machine_type="n9-huge-3")
    with pytest.raises(exceptions.BadRequest, match="min_replica_count"):
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2", min_replica_count=0)
    assert endpoint.list_models() == [] and fake.state()["containers"] == []
    model.delete()  # nothing was left deployed by the failures

    fake.fail("GET", r"/endpoints/[^/:]+$", code="PERMISSION_DENIED", message="no access")
    with pytest.raises(exceptions.Forbidden, match="no access"):
        endpoint.list_models()  # a GET of the endpoint
    fake.fail("GET", r"/endpoints/[^/:]+$", code=503, message="try later")
    assert endpoint.list_models() == []  # the SDK retried the 503

    batch_model = upload(vertex, "echo-job")
    vertex.bucket.blob("in/one.jsonl").upload_from_string("[1, 1]\n")
    fake.fail("POST", r"/batchPredictionJobs$", mode="job", code="INTERNAL", message="worker pool lost")
    with pytest.raises(RuntimeError, match="worker pool lost"):
        batch_model.batch_predict(
            job_display_name="fv-doomed",
            gcs_source=f"{vertex.gs}/in/one.jsonl",
            gcs_destination_prefix=f"{vertex.gs}/out",
            machine_type="n1-standard-2",
        )
    (job,) = fake.state()["batchPredictionJobs"]
    assert job["state"] == "JOB_STATE_FAILED" and job["error"] == {"code": 13, "message": "worker pool lost"}
    assert fake.faults() == []

    calls = fake.calls()
    assert {"method": "POST", "status": 200} == {k: calls[0][k] for k in ("method", "status")}
    assert calls[0]["path"].endswith("/models:upload")
    assert [c["status"] for c in fake.calls("GET", r"/endpoints/[^/:]+$")][-3:] == [403, 503, 200]
    assert fake.calls("GET", r"^/ui/projects/.*/endpoints/.*/operations/")  # the SDK polled deploy operations
    assert all({"method", "path", "query", "status", "time", "ms"} <= set(c) for c in calls)


def test_batch_cancel_delete_and_reset(vertex):
    fake = vertex.fake
    model = upload(vertex, "echo-slow-batch", serving_container_environment_variables={"ECHO_LOAD_SECONDS": "30"})
    vertex.bucket.blob("in/one.jsonl").upload_from_string("[1, 1]\n")
    job = aiplatform.BatchPredictionJob.submit(
        job_display_name="fv-cancel",
        model_name=model,
        gcs_source=f"{vertex.gs}/in/one.jsonl",
        gcs_destination_prefix=f"{vertex.gs}/out",
        machine_type="n1-standard-2",
    )
    deadline = time.monotonic() + 10
    while not fake.state()["containers"]:  # RUNNING, its container loading
        assert time.monotonic() < deadline
        time.sleep(0.05)
    (container,) = fake.state()["containers"]
    with pytest.raises(exceptions.BadRequest, match="cancel it before deleting") as refused:
        job.delete()
    assert _status(refused) == "FAILED_PRECONDITION"
    job.cancel()
    while job.state not in jobs._JOB_COMPLETE_STATES:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert job.state == jobs.gca_job_state.JobState.JOB_STATE_CANCELLED and _gone(container["pid"])
    job.delete()
    assert aiplatform.BatchPredictionJob.list() == []

    endpoint = aiplatform.Endpoint.create(display_name="fv-reset")
    upload(vertex, "echo-reset").deploy(endpoint=endpoint, machine_type="n1-standard-2")
    (container,) = fake.state()["containers"]
    fake.fail("GET", "/models", times=5)
    fake.reset()  # forgets every resource, fault and call, and stops every container
    state = fake.state()
    assert (state["models"], state["endpoints"], state["containers"], fake.faults(), fake.calls()) == (
        [],
        [],
        [],
        [],
        [],
    )
    assert _gone(container["pid"])


def test_standalone_server_stops_its_containers(vertex, gcs_emulator, tmp_path):
    own = start_fake_vertex(gcs_emulator.url, tmp_path)
    try:
        aiplatform.init(api_endpoint=own.url)
        model = upload(
            vertex,
            "echo-standalone",
            serving_container_predict_route="/score",
            serving_container_health_route="/ready",
            serving_container_ports=[9000],
        )
        assert model.container_spec.ports[0].container_port == 9000
        endpoint = aiplatform.Endpoint.create(display_name="fv-standalone")
        model.deploy(endpoint=endpoint, machine_type="e2-standard-4")
        (container,) = own.state()["containers"]
        assert (container["predictRoute"], container["healthRoute"]) == ("/score", "/ready")
        assert endpoint.predict(instances=[[2, 2]]).predictions == [6.5]
        assert not _gone(container["pid"])
    finally:
        own.stop()
    assert own.process.returncode == 0 and "fake-vertex stopped" in own.log_tail()
    assert _gone(container["pid"])
