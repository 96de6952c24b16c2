"""target=vertex_endpoint and vertex_batch through the real tfrun command, offline.

Cloud Storage is a real emulator process (fake-gcs-server); Vertex AI is the Vertex-compatible
test server (tests/fakes/vertex) driven by the real google-cloud-aiplatform SDK, whose deploys
and batch jobs run the model's serving container (tfrun-serve --vertex) as a local process.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import (
    BIN,
    blob_names,
    cloud_args,
    command_env,
    copy_trained,
    read_record,
    run_tfrun,
    run_tfrun_cloud,
    storage,
)
from tests.helpers import CLOUD_PROJECT as PROJECT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

FAST = ["train.epochs=2", "train.callbacks.tensorboard=false"]
# The suite's shared trained run, deployed: for the tests of what happens on Vertex (failures, clean-up, canary,
# Ctrl-C), not of training. test_endpoint_* and test_batch_prediction_* keep the whole `tfrun target=...` path.
DEPLOY = ["job=deploy", "source=runs/train"]


def resources(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["kind"] + ("" if r["created"] else ":reused"): r for r in record["cloud_resources"]}


def live(fake_vertex: Any) -> dict[str, list[Any]]:
    state = fake_vertex.state()
    return {kind: state.get(kind, []) for kind in ("models", "endpoints", "batchPredictionJobs")}


def test_endpoint_deploys_checks_parity_and_tears_down(workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    proc = run_tfrun_cloud(
        [
            "target=vertex_endpoint",
            "target.teardown=true",
            "target.latency_requests=5",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-endpoint"),
        ],
        workdir,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    record = read_record(workdir / "runs" / "r")
    assert record["status"] == "succeeded"
    entry = next(d for d in record["deployments"] if d["kind"] == "vertex_endpoint")
    assert re.match(r"projects/\d+/locations/us-central1/models/\d+$", entry["model"]), entry["model"]
    assert re.match(r"projects/\d+/locations/us-central1/endpoints/\d+$", entry["endpoint"]), entry["endpoint"]
    assert entry["deployed_model_id"] and entry["status"] == "removed"
    parity = entry["parity"]
    assert parity["passed"] and parity["exact"] and parity["examples"] == 360, parity
    assert entry["latency_ms"]["batch_1"]["n"] == 5
    assert "older than the TF 2.21" in entry["image_note"]
    found = resources(record)
    assert {"bucket", "gcs_objects", "model", "endpoint", "deployed_model"} <= set(found)
    for kind in ("gcs_objects", "model", "endpoint", "deployed_model"):
        assert found[kind]["status"] == "removed", found[kind]
        assert found[kind]["remove_command"].startswith("gcloud ")
        assert found[kind]["console"].startswith("https://console.cloud.google.com/")
    assert found["bucket"]["why"].startswith("target.teardown=true")  # created by the run, then removed
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}
    assert blob_names(gcs_emulator, "e2e-endpoint") == []
    calls = [c["path"] for c in fake_vertex.calls()]
    assert any(p.endswith(":deployModel") for p in calls) and any(p.endswith(":undeployModel") for p in calls)
    assert "Endpoint.predict equals the trained model bit-exactly on 360 holdout examples" in out


def test_batch_prediction_accuracy_equals_the_local_models(workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    proc = run_tfrun_cloud(
        [
            "target=vertex_batch",
            "target.shards=3",
            "target.poll_interval_s=0.5",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-batch"),
        ],
        workdir,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    batch = next(d for d in record["deployments"] if d["kind"] == "vertex_batch")["batch"]
    assert batch["predictions"] == batch["examples"] == 360 and batch["missing"] == 0
    assert batch["accuracy"] == batch["local_accuracy"] == record["metrics"]["final"]["holdout_accuracy"]
    assert batch["result_files"] >= 1 and batch["error_lines"] == 0
    assert set(batch["timings_s"]) == {"upload_instances", "job", "read_back"}
    found = resources(record)
    assert found["batch_job"]["status"] == "left" and found["model"]["status"] == "left"
    # teardown=false leaves them; the cleanup command removes exactly those, after listing them
    cleanup = subprocess.run(
        [str(BIN / "tfrun-records"), "cleanup", "runs/r", "--yes"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    after = resources(read_record(workdir / "runs" / "r"))
    assert all(r["status"] == "removed" for k, r in after.items() if r["created"] and k != "bucket"), after
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}


def test_batch_mode_local_needs_no_cloud(trained_digits: Path, workdir: Path):
    copy_trained(trained_digits, workdir)
    proc = run_tfrun_cloud(["target=vertex_batch", "target.mode=local", *DEPLOY], workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    entry = next(d for d in record["deployments"] if d["kind"] == "vertex_batch")
    assert entry["mode"] == "local" and entry["batch"]["accuracy"] == entry["batch"]["local_accuracy"]
    assert "cloud_resources" not in record
    assert list((workdir / "runs" / "r" / "vertex_batch" / "output").rglob("prediction.results-*"))


def _preexisting(fake_vertex: Any, gcs_emulator: Any, bucket: str) -> str:
    """A bucket and an endpoint that exist before the run: never the run's to remove."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import aiplatform

    storage(gcs_emulator).create_bucket(bucket)
    storage(gcs_emulator).bucket(bucket).blob("keep/me.txt").upload_from_string(b"not tfrun's")
    aiplatform.init(
        project=PROJECT,
        location="us-central1",
        api_endpoint=fake_vertex.url,
        api_transport="rest",
        credentials=AnonymousCredentials(),
    )
    return aiplatform.Endpoint.create(display_name="shared-endpoint").resource_name


def test_failed_deploy_removes_what_the_run_created_and_nothing_else(
    trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    copy_trained(trained_digits, workdir)
    endpoint = _preexisting(fake_vertex, gcs_emulator, "e2e-deploy-fails")
    fake_vertex.fail("POST", r":deployModel$", mode="operation", message="Machine type temporarily unavailable.")
    proc = run_tfrun_cloud(
        [
            "target=vertex_endpoint",
            "target.endpoint=shared-endpoint",
            *DEPLOY,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-deploy-fails"),
        ],
        workdir,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    record = read_record(workdir / "runs" / "r")
    assert record["status"] == "failed" and "Machine type temporarily unavailable" in record["error"]["message"]
    found = resources(record)
    assert found["endpoint:reused"]["name"] == endpoint and found["endpoint:reused"]["status"] == "reused"
    assert found["bucket:reused"]["status"] == "reused"
    assert found["model"]["status"] == "removed" and found["gcs_objects"]["status"] == "removed"
    state = live(fake_vertex)
    assert [e["name"] for e in state["endpoints"]] == [endpoint] and state["models"] == []
    assert blob_names(gcs_emulator, "e2e-deploy-fails") == ["keep/me.txt"]
    assert "removing the" in out


def test_failed_batch_job_removes_what_the_run_created(
    trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    copy_trained(trained_digits, workdir)
    fake_vertex.fail("POST", r"/batchPredictionJobs$", mode="job", message="Replica failed to start.")
    proc = run_tfrun_cloud(
        [
            "target=vertex_batch",
            "target.poll_interval_s=0.5",
            *DEPLOY,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-batch-fails"),
        ],
        workdir,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    assert "Replica failed to start" in record["error"]["message"]
    found = resources(record)
    for kind in ("batch_job", "model", "gcs_objects", "bucket"):
        assert found[kind]["status"] == "removed", found[kind]
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}
    assert blob_names(gcs_emulator, "e2e-batch-fails") == []


def test_canary_beside_a_deployed_model_then_traffic_restored(
    trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    copy_trained(trained_digits, workdir)  # the stable model: the shared trained run; the canary trains its own
    first = run_tfrun_cloud(
        [
            "target=vertex_endpoint",
            "target.latency_requests=2",
            *DEPLOY,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-canary"),
        ],
        workdir,
    )
    assert first.returncode == 0, first.stdout + first.stderr
    stable = next(d for d in read_record(workdir / "runs" / "r")["deployments"] if d["kind"] == "vertex_endpoint")
    assert stable["status"] == "serving" and stable["traffic_split"] == {stable["deployed_model_id"]: 100}
    (workdir / "runs" / "r").rename(workdir / "runs" / "stable")

    # ~14 instances per request: 26 requests, each first answered by the stable model with p = 0.7
    canary = run_tfrun_cloud(
        [
            "target=vertex_endpoint",
            "target.traffic_percentage=30",
            "target.teardown=true",
            "target.max_payload_bytes=4096",
            "target.latency_requests=2",
            "train.seed=7",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-canary"),
        ],
        workdir,
    )
    assert canary.returncode == 0, canary.stdout + canary.stderr
    record = read_record(workdir / "runs" / "r")
    entry = next(d for d in record["deployments"] if d["kind"] == "vertex_endpoint")
    ours = entry["deployed_model_id"]
    assert entry["endpoint"] == stable["endpoint"] and entry["endpoint_reused"]
    assert entry["traffic_split"] == {stable["deployed_model_id"]: 70, ours: 30}
    assert entry["parity"]["passed"]  # answers from the stable model were retried, not compared
    assert sum(entry["parity"]["answers_from_other_models"].values()) > 0
    found = resources(record)
    assert found["endpoint:reused"]["status"] == "reused" and found["deployed_model"]["status"] == "removed"
    endpoints = live(fake_vertex)["endpoints"]
    assert len(endpoints) == 1
    assert {k: int(v) for k, v in endpoints[0]["trafficSplit"].items()} == {stable["deployed_model_id"]: 100}

    done = subprocess.run(
        [str(BIN / "tfrun-records"), "cleanup", "--all", "runs", "--yes"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}


def test_missing_credentials_fail_in_one_line_before_training(workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    args = [a for a in cloud_args(fake_vertex, gcs_emulator, "e2e-adc") if not a.startswith("cloud.credentials")]
    env = command_env(HOME=str(workdir), GCE_METADATA_HOST="127.0.0.1:1", NO_GCE_CHECK="true")
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    proc = run_tfrun(["target=vertex_endpoint", *FAST, *args, "hydra.run.dir=runs/r"], workdir, env, timeout=120)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "gcloud auth application-default login" in out and "Traceback" not in out
    assert out.count("no application default credentials") == 1, out
    record = read_record(workdir / "runs" / "r")
    assert record["error"]["step"] == "vertex_preflight" and record["error"]["type"] == "CloudAuthError"
    assert [s["name"] for s in record["steps"]] == ["vertex_preflight"]  # nothing trained, nothing created
    assert not (workdir / "models").exists() and not record.get("cloud_resources")


def test_ctrl_c_after_deploy_removes_what_the_run_created(
    trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    import signal
    import time

    copy_trained(trained_digits, workdir)

    env = command_env()
    env.pop("STORAGE_EMULATOR_HOST", None)
    proc = subprocess.Popen(
        [
            str(BIN / "tfrun"),
            "target=vertex_endpoint",
            "target.latency_requests=100000",
            *DEPLOY,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-interrupt"),
            "hydra.run.dir=runs/r",
        ],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    record_path = workdir / "runs" / "r" / "record.json"
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline:
            try:
                kinds = {r["kind"] for r in json.loads(record_path.read_text()).get("cloud_resources", [])}
            except (OSError, ValueError):
                kinds = set()
            if "deployed_model" in kinds:
                break
            assert proc.poll() is None, proc.communicate()[0]
            time.sleep(0.2)
        else:
            raise AssertionError("the model was never deployed")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out
    record = read_record(workdir / "runs" / "r")
    assert record["status"] == "interrupted"
    found = resources(record)
    for kind in ("deployed_model", "endpoint", "model", "gcs_objects", "bucket"):
        assert found[kind]["status"] == "removed" and found[kind]["why"].startswith("run interrupted"), found[kind]
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}


def _cleanup(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "tfrun-records"), "cleanup", *args, "--yes"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_deploy_past_its_deadline_is_found_and_removed_later(
    trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    """The deploy goes on server-side after the run gave up: nothing records its id, clean-up still finds it."""
    import time

    copy_trained(trained_digits, workdir)
    proc = run_tfrun_cloud(
        [
            "target=vertex_endpoint",
            "target.timeout_s=0.5",
            *DEPLOY,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-deadline"),
        ],
        workdir,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    assert record["error"]["type"] == "TimeoutError" and "target.timeout_s" in record["error"]["message"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # let the late deploy land (or fail), as it would on Vertex
        if all(op.get("done") for op in fake_vertex.state()["operations"]):
            break
        time.sleep(0.2)
    done = _cleanup(workdir, "runs/r")
    assert done.returncode == 0, done.stdout + done.stderr
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}, fake_vertex.state()
    assert blob_names(gcs_emulator, "e2e-deadline") == []


def test_a_teardown_that_fails_fails_the_run_and_cleanup_retries(
    trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    copy_trained(trained_digits, workdir)
    fake_vertex.fail("DELETE", r"/models/\d+$", mode="http", times=2, code="UNAVAILABLE", message="try later")
    proc = run_tfrun_cloud(
        [
            "target=vertex_batch",
            "target.teardown=true",
            "target.poll_interval_s=0.5",
            *DEPLOY,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-teardown"),
        ],
        workdir,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    record = read_record(workdir / "runs" / "r")
    assert record["error"]["type"] == "TeardownFailed"
    found = resources(record)
    assert found["model"]["status"] == "failed_to_remove" and "tfrun-records cleanup" in found["model"]["why"]
    assert found["gcs_objects"]["status"] == "failed_to_remove"  # kept while the Model made from them lives
    assert found["batch_job"]["status"] == "removed"
    done = _cleanup(workdir, "--all", "runs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert all(r["status"] in ("removed", "reused") for r in read_record(workdir / "runs" / "r")["cloud_resources"])
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}


def test_job_deploy_puts_one_trained_run_on_an_endpoint_and_in_a_batch_job(
    trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    """`tfrun job=deploy source=<run dir>`: no training, each target checked against the source SavedModel."""
    copy_trained(trained_digits, workdir)  # the suite's shared trained run (trained with no cloud)
    train = read_record(workdir / "runs" / "train")
    env = command_env()
    env.pop("STORAGE_EMULATOR_HOST", None)
    targets = {
        "vertex_endpoint": ["target.teardown=true", "target.latency_requests=5"],
        "vertex_batch": ["target.teardown=true", "target.poll_interval_s=0.5"],
    }
    for target, extra in targets.items():
        args = [
            "job=deploy",
            "source=runs/train",
            f"target={target}",
            *extra,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-deploy-job"),
        ]
        proc = run_tfrun([*args, f"hydra.run.dir=runs/{target}"], workdir, env, timeout=420)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        record = read_record(workdir / "runs" / target)
        steps = [s["name"] for s in record["steps"]]
        assert record["job"] == "deploy" and steps[:4] == ["vertex_preflight", "hardware", "data", "source"], steps
        assert "train" not in steps
        assert record["source"]["run_id"] == train["run_id"] and record["weights_sha256"] == train["weights_sha256"]
        entry = next(d for d in record["deployments"] if d["kind"] == target)
        if target == "vertex_endpoint":
            assert entry["parity"]["passed"] and entry["parity"]["exact"], entry["parity"]
        else:
            assert entry["batch"]["accuracy"] == entry["batch"]["local_accuracy"], entry["batch"]
            assert entry["batch"]["local_accuracy"] == train["metrics"]["final"]["holdout_accuracy"]
    assert live(fake_vertex) == {"models": [], "endpoints": [], "batchPredictionJobs": []}
