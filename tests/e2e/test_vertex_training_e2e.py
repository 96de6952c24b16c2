"""cluster=vertex and sweep=vertex through the real tfrun command, offline.

Cloud Storage is a real emulator process; Vertex AI is the Vertex-compatible test server driven by the
real google-cloud-aiplatform SDK. The server runs every replica of a submitted job as a local process
with the environment Vertex gives it (TF_CONFIG with a chief, CLUSTER_SPEC, AIP_* dirs on gs:// in the
emulator, CLOUD_ML_JOB_ID), restarts a killed replica as Vertex does, and runs a tuning job's trials
with their parameters as `--id=value` arguments, reading the metric cloudml-hypertune wrote.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, assert_best_line_reproduces, blob_names, cloud_args, command_env, read_record, storage

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

FAST = ["cluster.poll_interval_s=0.5", "train.callbacks.tensorboard=false"]


def start(args: list[str], cwd: Path, log: Path) -> subprocess.Popen:
    env = command_env()
    env.pop("STORAGE_EMULATOR_HOST", None)  # the config alone must reach the emulator
    with open(log, "w") as out:
        return subprocess.Popen([str(BIN / "tfrun"), *args], cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)


def finish(proc: subprocess.Popen, log: Path, timeout: float = 420) -> str:
    proc.wait(timeout)
    return log.read_text()


def seconds_until(line: str, log: Path, since: float, timeout: float = 60) -> float:
    """Seconds from `since` (time.monotonic) until `line` is in the run's log, read as the run writes it."""
    wait_for(lambda: line in log.read_text(), timeout, repr(line))
    return time.monotonic() - since


def wait_for(predicate, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def jobs(fake_vertex: Any, kind: str = "customJobs") -> list[dict]:
    return fake_vertex.state().get(kind, [])


def resource(record: dict, kind: str) -> dict:
    return next(r for r in record["cloud_resources"] if r["kind"] == kind)


def test_multi_worker_job_resumes_after_a_killed_worker_and_registers_its_model(
    workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    """Done when 1 and 2: a chief and a worker train; the worker is killed mid-job, Vertex restarts the job,
    both resume from AIP_CHECKPOINT_DIR; the model lands at AIP_MODEL_DIR and the local record has it all."""
    log = workdir / "out.log"
    proc = start(
        [
            "cluster=vertex",
            "strategy=multi_worker",
            "cluster.workers=2",
            "train.epochs=5",
            "cluster.poll_interval_s=0.5",
            *cloud_args(fake_vertex, gcs_emulator, "e2e-train"),
            "hydra.run.dir=runs/r",
        ],
        workdir,
        log,
    )
    client = storage(gcs_emulator)

    def worker_with_a_checkpoint() -> dict | None:
        for replica in fake_vertex.replicas():
            if replica["name"] == "workerpool1-0" and replica["alive"]:
                bucket, prefix = replica["env"]["AIP_CHECKPOINT_DIR"][5:].split("/", 1)
                if any(b.name.endswith("/checkpoint") for b in client.list_blobs(bucket, prefix=prefix)):
                    return replica
        return None

    worker = wait_for(worker_with_a_checkpoint, 240, "the worker replica and the chief's first checkpoint")
    os.kill(worker["pid"], signal.SIGKILL)
    out = finish(proc, log)
    assert proc.returncode == 0, out
    record = read_record(workdir / "runs" / "r")
    assert record["status"] == "succeeded"
    job = resource(record, "custom_job")
    assert re.match(r"projects/\d+/locations/us-central1/customJobs/\d+$", job["name"]), job
    assert job["details"]["state"] == "JOB_STATE_SUCCEEDED" and job["console"].startswith("https://console.")
    model = resource(record, "model")
    assert re.match(r"projects/\d+/locations/us-central1/models/\d+$", model["name"]), model
    result = next(s["result"] for s in record["steps"] if s["name"] == "vertex_job_result")
    chief = result["chief"]
    assert chief["cluster"]["task"]["type"] == "chief" and chief["resumed_from_epoch"] >= 1, chief
    assert record["metrics"]["final"]["holdout_accuracy"] > 0.5 and len(record["weights_sha256"]) == 64

    # the replicas: Vertex's chief and worker, both restarted once with the job (restart_job_on_worker_restart)
    replicas = {r["name"]: r for r in fake_vertex.replicas(job["name"])}
    assert set(replicas) == {"workerpool0-0", "workerpool1-0"}
    assert all(r["restarts"] == 1 for r in replicas.values())
    tf_config = json.loads(replicas["workerpool1-0"]["env"]["TF_CONFIG"])
    assert sorted(tf_config["cluster"]) == ["chief", "worker"] and tf_config["task"]["type"] == "worker"
    assert "resuming from the backup after epoch" in open(replicas["workerpool1-0"]["log"]).read()

    # the chief's record and model at AIP_MODEL_DIR (in the emulator), and the same bytes locally
    base = job["details"]["base_output_dir"]
    assert replicas["workerpool0-0"]["env"]["AIP_MODEL_DIR"] == base + "model/"
    bucket, prefix = base[5:].split("/", 1)
    names = [n[len(prefix) :] for n in blob_names(gcs_emulator, bucket) if n.startswith(prefix)]
    assert {"model/saved_model.pb", "record.json"} <= set(names) and any(n.startswith("checkpoints/") for n in names)
    chief_record = json.loads(client.bucket(bucket).blob(prefix + "record.json").download_as_bytes())
    assert chief_record["weights_sha256"] == record["weights_sha256"]
    assert chief_record["metrics"]["final"] == record["metrics"]["final"]
    assert next(s for s in chief_record["steps"] if s["name"] == "strategy")["result"]["replicas"] == 2
    local = next(a for a in record["artifacts"] if a["kind"] == "saved_model")
    assert local["source"] == base + "model/" and (workdir / local["path"] / "saved_model.pb").is_file()
    assert fake_vertex.state()["models"][0]["artifactUri"].rstrip("/") == (base + "model").rstrip("/")

    # saved_model_cli (TensorFlow's own tool) reads the job's model
    cli = subprocess.run(
        [
            str(BIN / "saved_model_cli"),
            "show",
            "--dir",
            local["path"],
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cli.returncode == 0 and "probabilities" in cli.stdout, cli.stdout + cli.stderr

    # what the run created is listed, and `tfrun-records cleanup` removes it all
    cleanup = subprocess.run(
        [str(BIN / "tfrun-records"), "cleanup", "runs/r", "--yes"],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert cleanup.returncode == 0, cleanup.stdout + cleanup.stderr
    assert jobs(fake_vertex) == [] and fake_vertex.state()["models"] == []
    assert not [n for n in blob_names(gcs_emulator, bucket) if n.startswith(prefix)]


def test_tuning_job_summary_and_its_best_line_reproduce_the_best_trial(
    workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    """Done when 3: 4 trials, 2 at a time; the summary's best line, run here, gives the same metric and weights."""
    proc = subprocess.run(
        [
            str(BIN / "tfrun"),
            "-m",
            "sweep=vertex",
            "tuning.max_trial_count=4",
            "tuning.parallel_trial_count=2",
            "train.epochs=2",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-tune"),
            "hydra.sweep.dir=multi",
        ],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    summary = json.loads((workdir / "multi" / "sweep.json").read_text())
    assert [j["job"] for j in sorted(summary["jobs"], key=lambda j: j["job"])] == [f"trial-{n}" for n in range(1, 5)]
    assert all(j["status"] == "succeeded" for j in summary["jobs"])
    assert (workdir / "multi" / "sweep.csv").is_file() and (workdir / "multi" / "sweep.png").is_file()
    best = summary["best"]
    assert f"reproduce: {best['command']}" in out and "cluster" not in best["command"]
    assert best["metric"] == max(j["metric"] for j in summary["jobs"])

    (tuning,) = jobs(fake_vertex, "hyperparameterTuningJobs")
    assert tuning["state"] == "JOB_STATE_SUCCEEDED" and len(tuning["trials"]) == 4
    assert read_record(workdir / "multi" / "0")["job"] == "tune"
    spans = [(r["started"], r["ended"]) for r in fake_vertex.replicas() if r["trial"]]
    assert max(sum(s <= t < e for s, e in spans) for t, _ in spans) == 2  # never more than 2 trials at once
    trial = read_record(workdir / "multi" / best["job"])
    assert trial["vertex_trial"]["state"] == "succeeded"
    reported = next(t for t in tuning["trials"] if f"trial-{t['id']}" == best["job"])["measurements"]
    assert [int(m["stepCount"]) for m in reported] == [1, 2, 2]  # each epoch's val_accuracy, then the holdout value
    assert reported[-1]["metrics"][0]["value"] == pytest.approx(best["metric"])
    values = [m["metrics"][0]["value"] for m in reported]  # tuning.measurement=best: Vertex keeps the best report
    assert trial["vertex_trial"]["final_measurement"][0]["value"] == pytest.approx(max(values))

    assert_best_line_reproduces(summary, workdir / "multi", workdir)


def test_a_failed_trial_is_a_failed_row_of_the_summary(workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    """A grid over one categorical key whose second value the trial's own tfrun refuses: the job goes on
    (max_failed_trial_count=2), the summary shows the trial failed with Vertex's reason, the best is the other."""
    proc = subprocess.run(
        [
            str(BIN / "tfrun"),
            "-m",
            "sweep=vertex",
            "tuning.algorithm=grid",
            "tuning.max_trial_count=2",
            "tuning.parallel_trial_count=1",
            "tuning.max_failed_trial_count=2",
            "~tuning.params.train",
            "~tuning.params.model",
            "+tuning.params.train.optimizer={type:categorical,values:[adam,nosuch]}",
            "train.epochs=1",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-trials"),
            "hydra.sweep.dir=multi",
        ],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out  # the tuning job went on; the exit code says a trial failed
    assert "1 of 2 jobs did not succeed: job trial-2 (failed): exit 1" in out
    rows = {j["job"]: j for j in json.loads((workdir / "multi" / "sweep.json").read_text())["jobs"]}
    assert rows["trial-1"]["status"] == "succeeded" and rows["trial-1"]["params"]["train.optimizer"] == "adam"
    failed = rows["trial-2"]
    assert failed["status"] == "failed" and failed["params"]["train.optimizer"] == "nosuch"
    assert "exited with a non-zero status of 2" in failed["error"] and "train.optimizer" in failed["error"]
    assert "job trial-2 failed: TrialFailed" in out and "best: job trial-1" in out


def test_median_early_stopping_reaches_the_study_and_stops_a_poor_trial(
    workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    """tuning.early_stopping=median: the request's study carries the spec, each trial reports every epoch, and
    the server's median rule stops the second trial (a learning rate far too small to learn in its epochs) after
    the first one finished: the summary has it `pruned`, not failed, and the sweep exits 0."""
    epochs = 20
    proc = subprocess.run(
        [
            str(BIN / "tfrun"),
            "-m",
            "sweep=vertex",
            "tuning.early_stopping=median",
            "tuning.algorithm=grid",
            "tuning.max_trial_count=2",
            "tuning.parallel_trial_count=1",
            "~tuning.params.train",
            "~tuning.params.model",
            "+tuning.params.train.learning_rate={type:categorical,values:['0.01','0.000001']}",
            f"train.epochs={epochs}",
            *FAST,
            *cloud_args(fake_vertex, gcs_emulator, "e2e-stopping"),
            "hydra.sweep.dir=multi",
        ],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    (tuning,) = jobs(fake_vertex, "hyperparameterTuningJobs")
    assert "medianAutomatedStoppingSpec" in tuning["studySpec"], tuning["studySpec"]
    first, second = tuning["trials"]
    steps = [int(m["stepCount"]) for m in first["measurements"]]
    assert steps == [*range(1, epochs + 1), epochs], steps  # every epoch, then the holdout value
    assert second["state"] == "SUCCEEDED" and 0 < len(second["measurements"]) < epochs, second
    rows = {j["job"]: j for j in json.loads((workdir / "multi" / "sweep.json").read_text())["jobs"]}
    assert rows["trial-1"]["status"] == "succeeded" and rows["trial-2"]["status"] == "pruned", rows
    pruned = read_record(workdir / "multi" / "trial-2")["pruned"]
    assert pruned["pruner"] == "vertex median" and pruned["epoch"] == len(second["measurements"]) < epochs
    assert "1 stopped early by Vertex (median)" in out and "best: job trial-1" in out


def test_failed_and_cancelled_jobs_end_the_run_within_seconds(workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    """Done when 4: a job the server fails ends the run `failed` with the job's error; Ctrl-C cancels the job
    and ends the run `interrupted` with the job CANCELLED; nothing the run made is left.

    Within 10 s of the job's failure or the signal the run is removing what it made (the job's end seen, the
    cancel taken); the clean-up itself is a child importing the Vertex SDK (~4 s alone on a slow core, 10 s
    and more when the suite loads the machine): its time is measured by bench/bench_vertex_training.py."""
    cloud = cloud_args(fake_vertex, gcs_emulator, "e2e-fail")
    fake_vertex.fail(
        "POST",
        r"/customJobs$",
        mode="job",
        code="RESOURCE_EXHAUSTED",
        message="quota exceeded for n1-standard-4 in us-central1",
    )
    log = workdir / "failed.log"
    proc = start(["cluster=vertex", *FAST, *cloud, "hydra.run.dir=runs/failed"], workdir, log)
    wait_for(lambda: any(j["state"] == "JOB_STATE_FAILED" for j in jobs(fake_vertex)), 120, "the job to fail")
    failed_at = time.monotonic()
    reacted = seconds_until("the run failed: removing the 4 cloud resource(s) it created", log, failed_at)
    out = finish(proc, log, timeout=60)
    assert reacted < 10, out
    assert proc.returncode == 1, out
    record = read_record(workdir / "runs" / "failed")
    assert record["status"] == "failed" and record["error"]["type"] == "VertexJobFailed"
    assert "JOB_STATE_FAILED: quota exceeded for n1-standard-4" in record["error"]["message"]
    assert resource(record, "custom_job")["details"]["state"] == "JOB_STATE_FAILED"

    log = workdir / "cancelled.log"
    proc = start(["cluster=vertex", "train.epochs=200", *FAST, *cloud, "hydra.run.dir=runs/cancelled"], workdir, log)
    wait_for(
        lambda: any(r["alive"] for r in fake_vertex.replicas()) and "JOB_STATE_RUNNING" in log.read_text(),
        120,
        "the job to run",
    )
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    reacted = seconds_until("the run interrupted: removing the 4 cloud resource(s) it created", log, sent)
    out = finish(proc, log, timeout=60)
    assert reacted < 10, out
    assert proc.returncode == 130, out
    record = read_record(workdir / "runs" / "cancelled")
    assert record["status"] == "interrupted" and record["error"]["step"] == "vertex_job"
    job = resource(record, "custom_job")
    assert job["details"]["state"] == "JOB_STATE_CANCELLED" and job["status"] == "removed"
    assert not any(r["alive"] for r in fake_vertex.replicas())
    for run in ("failed", "cancelled"):  # a run that did not succeed removes what it created
        created = [r for r in read_record(workdir / "runs" / run)["cloud_resources"] if r["created"]]
        assert created and all(r["status"] == "removed" for r in created), created
    assert jobs(fake_vertex) == []


@pytest.mark.parametrize(
    "target, step",
    [
        (["target=tfserving", "target.server=embedded"], "tfserving_parity"),
        (["target=tflite", "target.quantization=int8"], "tflite_evaluate"),
    ],
    ids=["tfserving", "tflite-int8"],
)
def test_a_local_target_takes_the_jobs_model_as_a_local_export(
    workdir: Path, fake_vertex: Any, gcs_emulator: Any, target: list[str], step: str
):
    """cluster=vertex target=tfserving / tflite: the job trains on Vertex, its model comes down as the next local
    version (byte-checked), is registered, and the target runs here on it with its own checks."""
    bucket = f"e2e-{target[0].split('=')[1]}"
    proc = subprocess.run(
        [
            str(BIN / "tfrun"),
            "cluster=vertex",
            "train.epochs=3",
            *FAST,
            *target,
            *cloud_args(fake_vertex, gcs_emulator, bucket),
            "hydra.run.dir=runs/r",
        ],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    record = read_record(workdir / "runs" / "r")
    names = [s["name"] for s in record["steps"]]
    assert names[:5] == ["vertex_preflight", "vertex_stage", "vertex_job", "vertex_job_result", "vertex_register"]
    local = next(a for a in record["artifacts"] if a["kind"] == "saved_model")
    job = resource(record, "custom_job")
    assert local["source"] == job["details"]["base_output_dir"] + "model/"
    result = next(s["result"] for s in record["steps"] if s["name"] == step)
    if step == "tfserving_parity":  # REST and gRPC answers equal the downloaded model's, bit for bit
        parity = result["parity"]
        assert parity["passed"] and all(parity[p]["exact"] for p in ("rest", "grpc")), parity
    else:  # the int8 file was converted from the downloaded SavedModel and evaluated against it
        tflite = next(a for a in record["artifacts"] if a["kind"] == "tflite")
        assert tflite["path"].startswith(local["path"]) and tflite["quantization"] == "int8", tflite
        assert tflite["accepted"] and tflite["examples"] > 0, tflite
    assert resource(record, "model")["status"] == "left", "the registered model is kept, as with target=none"


def test_a_local_target_that_fails_removes_what_the_run_made_in_the_cloud(
    workdir: Path, fake_vertex: Any, gcs_emulator: Any
):
    """The job succeeded and its model was registered, then TF Serving failed its health check here: the run
    fails, the version is rolled back, and the staged files, job outputs, job and Model are removed."""
    proc = subprocess.run(
        [
            str(BIN / "tfrun"),
            "cluster=vertex",
            "train.epochs=1",
            *FAST,
            "target=tfserving",
            "target.server=embedded",
            "target.start_timeout_s=0.001",  # no server serves 1 ms after its start: the health check fails
            *cloud_args(fake_vertex, gcs_emulator, "e2e-local-fails"),
            "hydra.run.dir=runs/r",
        ],
        cwd=workdir,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    record = read_record(workdir / "runs" / "r")
    assert record["status"] == "failed" and record["error"]["type"] == "DeploymentFailed", record["error"]
    created = [r for r in record["cloud_resources"] if r["created"]]
    assert {r["kind"] for r in created} >= {"custom_job", "model", "gcs_objects"}, created
    assert all(r["status"] == "removed" for r in created), created
    job = resource(record, "custom_job")["name"]
    assert job not in [j["name"] for j in jobs(fake_vertex)]
    assert not [n for n in blob_names(gcs_emulator, "e2e-local-fails") if "/staging/" in n or "/vertex-jobs/" in n]
