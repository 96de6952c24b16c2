"""fake-vertex's CustomJobs and HyperparameterTuningJobs, driven by the real google-cloud-aiplatform SDK.

No TensorFlow: every replica is tests/fakes/vertex/replica_script.py, which records the environment Vertex
gave it (TF_CONFIG, CLUSTER_SPEC, AIP_*, CLOUD_ML_*) as JSON under $AIP_MODEL_DIR/replicas/ in the GCS
emulator and, in trials, reports a score from its `--<parameter>=<value>` arguments as cloudml-hypertune does.
"""

from __future__ import annotations

import json
import math
import os
import random
import signal
import sys
import time
from types import SimpleNamespace

import pytest

from tests.fakes.processes import gone as _gone
from tests.fakes.vertex import study
from tests.fakes.vertex.fixture import sdk_with_bucket, start_fake_vertex
from tests.fakes.vertex.replica_script import score
from tests.helpers import LazyModule, requires

pytestmark = requires("google.cloud.aiplatform")

aiplatform = LazyModule("google.cloud.aiplatform")
exceptions = LazyModule("google.api_core.exceptions")
hpt = LazyModule("google.cloud.aiplatform.hyperparameter_tuning")
jobs = LazyModule("google.cloud.aiplatform.jobs")
job_state = LazyModule("google.cloud.aiplatform_v1.types.job_state")

SCRIPT = [sys.executable, "-m", "tests.fakes.vertex.replica_script"]
SUCCEEDED, INFEASIBLE = 4, 5  # Trial.State


def pool(replicas: int = 1, args: tuple[str, ...] = (), **spec) -> dict:
    return {
        "machine_spec": {"machine_type": "n1-standard-4"},
        "replica_count": replicas,
        "container_spec": {"image_uri": "us-docker.pkg.dev/acme/train:1", "command": SCRIPT, "args": list(args)},
        **spec,
    }


@pytest.fixture
def vertex(fake_vertex, gcs_emulator, monkeypatch):
    """aiplatform.init against the fake, a fresh bucket, job polling every 0.2 s instead of 5 s."""
    with sdk_with_bucket(fake_vertex, gcs_emulator, monkeypatch, "fvt") as (client, bucket):

        def records(prefix: str) -> list[dict]:
            """The replica script's records under gs://bucket/<prefix>, by start time."""
            blobs = client.list_blobs(bucket.name, prefix=prefix)
            found = [json.loads(b.download_as_bytes()) for b in blobs if "/replicas/" in b.name]
            return sorted(found, key=lambda r: r["started"])

        yield SimpleNamespace(
            fake=fake_vertex, bucket=bucket, gs=f"gs://{bucket.name}", records=records, emulator=gcs_emulator
        )


def wait_until(predicate, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_four_pools_get_vertex_cluster_env(vertex):
    job = aiplatform.CustomJob(
        display_name="fvt-cluster",
        labels={"team": "fvt"},
        base_output_dir=f"{vertex.gs}/out",
        worker_pool_specs=[pool(1, ("--sleep", "1")), pool(2), pool(1, ("--sleep", "60")), pool(1)],
    )
    started = time.perf_counter()
    job.run()
    seconds = time.perf_counter() - started
    assert job.state == job_state.JobState.JOB_STATE_SUCCEEDED and seconds < 6
    records = {r["name"]: r for r in vertex.records("out/model/replicas/")}
    assert sorted(records) == ["workerpool0-0", "workerpool1-0", "workerpool1-1", "workerpool2-0", "workerpool3-0"]

    tf_configs = {name: json.loads(r["env"]["TF_CONFIG"]) for name, r in records.items()}
    cluster = tf_configs["workerpool0-0"]["cluster"]
    assert sorted(cluster) == ["chief", "ps", "worker"]  # evaluators are not part of the training cluster
    assert (len(cluster["chief"]), len(cluster["worker"]), len(cluster["ps"])) == (1, 2, 1)
    addresses = cluster["chief"] + cluster["worker"] + cluster["ps"]
    assert len(set(addresses)) == 4 and all(a.startswith("127.0.0.1:") for a in addresses)
    expected_tasks = {
        "workerpool0-0": ("chief", 0),
        "workerpool1-0": ("worker", 0),
        "workerpool1-1": ("worker", 1),
        "workerpool2-0": ("ps", 0),
        "workerpool3-0": ("evaluator", 0),
    }
    for name, (kind, index) in expected_tasks.items():
        config = tf_configs[name]
        assert config["cluster"] == cluster and config["environment"] == "cloud"
        assert config["task"] == {"type": kind, "index": index, "trial": ""}
        assert len(config["job"]["workerPoolSpecs"]) == 4
        assert records[name]["taskType"] == kind
        spec = json.loads(records[name]["env"]["CLUSTER_SPEC"])
        assert spec["task"] == {"type": name.split("-")[0], "index": index, "trial": ""}
        assert spec["environment"] == "cloud"
        pools = spec["cluster"]
        assert (pools["workerpool0"], pools["workerpool1"], pools["workerpool2"]) == (
            cluster["chief"],
            cluster["worker"],
            cluster["ps"],
        )
        assert len(pools["workerpool3"]) == 1
        env = records[name]["env"]
        assert env["AIP_MODEL_DIR"] == f"{vertex.gs}/out/model/"
        assert env["AIP_CHECKPOINT_DIR"] == f"{vertex.gs}/out/checkpoints/"
        assert env["AIP_TENSORBOARD_LOG_DIR"] == f"{vertex.gs}/out/logs/"
        assert env["CLOUD_ML_JOB_ID"] == job.name and env["STORAGE_EMULATOR_HOST"] == vertex.emulator.url
        assert "CLOUD_ML_TRIAL_ID" not in env
    assert len({r["cwd"] for r in records.values()}) == 5  # each replica has its own disk
    assert records["workerpool0-0"]["ended"] is not None and records["workerpool2-0"]["ended"] is None

    replicas = {r["name"]: r for r in vertex.fake.replicas(job.resource_name)}
    assert replicas["workerpool0-0"]["returncode"] == 0
    assert replicas["workerpool2-0"]["returncode"] == -signal.SIGTERM  # the parameter server was stopped
    assert not any(r["alive"] for r in replicas.values()) and all(_gone(r["pid"]) for r in replicas.values())
    assert all(r["restarts"] == 0 and os.path.isfile(r["log"]) for r in replicas.values())
    assert "started with ['--sleep', '1']" in open(replicas["workerpool0-0"]["log"]).read()

    assert job.labels == {"team": "fvt"}
    assert [j.display_name for j in aiplatform.CustomJob.list(filter='display_name="fvt-cluster"')] == ["fvt-cluster"]
    assert len(aiplatform.CustomJob.list(filter='state="JOB_STATE_SUCCEEDED" AND labels.team="fvt"')) == 1
    job.delete()
    assert aiplatform.CustomJob.list() == [] and vertex.fake.replicas() == []


def test_failing_replica_fails_the_job_with_its_log(vertex):
    job = aiplatform.CustomJob(
        display_name="fvt-fail",
        base_output_dir=f"{vertex.gs}/fail",
        worker_pool_specs=[pool(1, ("--sleep", "30")), pool(1, ("--exit", "1"))],
    )
    started = time.perf_counter()
    with pytest.raises(RuntimeError, match="The replica workerpool1-0 exited with a non-zero status of 1"):
        job.run()
    assert time.perf_counter() - started < 8
    assert job.state == job_state.JobState.JOB_STATE_FAILED and job.error.code == 3
    assert "fails on purpose with status 1" in job.error.message and "check the logs" in job.error.message
    chief = vertex.fake.replicas(job.name)[0]
    assert chief["name"] == "workerpool0-0" and _gone(chief["pid"])  # the other replicas were stopped

    slow = aiplatform.CustomJob(display_name="fvt-timeout", worker_pool_specs=[pool(1, ("--sleep", "30"))])
    with pytest.raises(RuntimeError, match="longer than its timeout of 1 s"):
        slow.run(timeout=1)  # scheduling.timeout
    assert slow.error.code == 4 and _gone(vertex.fake.replicas(slow.name)[0]["pid"])
    missing = aiplatform.CustomJob(
        display_name="fvt-no-binary",
        worker_pool_specs=[pool(1, container_spec={"image_uri": "example.com/x:1", "command": ["/nonexistent/train"]})],
    )
    with pytest.raises(RuntimeError, match="non-zero status of 127"):
        missing.run()


def test_killed_replica_is_restarted(vertex):
    def submit(name: str, **options) -> "aiplatform.CustomJob":
        job = aiplatform.CustomJob(
            display_name=name,
            base_output_dir=f"{vertex.gs}/{name}",
            worker_pool_specs=[pool(1, ("--sleep", "4")), pool(1, ("--sleep", "1.5"))],
        )
        job.submit(**options)
        return job

    def kill_worker(job) -> dict:
        worker = wait_until(
            lambda: next(
                (r for r in vertex.fake.replicas(job.name) if r["name"] == "workerpool1-0" and r["alive"]), None
            ),
            what="worker",
        )
        for replica in ("workerpool0-0", "workerpool1-0"):  # both started: a slow chief must not miss its first run
            wait_until(
                lambda replica=replica: vertex.records(f"{job.display_name}/model/replicas/{replica}"),
                what=f"{replica}'s record",
            )
        os.kill(worker["pid"], signal.SIGKILL)
        return worker

    job = submit("fvt-restart")
    first = kill_worker(job)
    job.wait_for_completion()
    assert job.state == job_state.JobState.JOB_STATE_SUCCEEDED
    worker = next(r for r in vertex.fake.replicas(job.name) if r["name"] == "workerpool1-0")
    assert worker["restarts"] == 1 and worker["pids"] == [first["pid"], worker["pid"]] and worker["env"] == first["env"]
    runs = vertex.records("fvt-restart/model/replicas/workerpool1-0")
    assert [r["pid"] for r in runs] == worker["pids"] and runs[0]["env"] == runs[1]["env"]  # the same environment
    assert runs[0]["ended"] is None and runs[1]["ended"] is not None
    assert "restarted (killed by signal 9), restart 1 of 1" in open(worker["log"]).read()

    # scheduling.restartJobOnWorkerRestart: the whole job restarts with the killed replica
    job = submit("fvt-restart-all", restart_job_on_worker_restart=True)
    kill_worker(job)
    job.wait_for_completion()
    restarts = {r["name"]: r["restarts"] for r in vertex.fake.replicas(job.name)}
    assert restarts == {"workerpool0-0": 1, "workerpool1-0": 1}
    assert len(vertex.records("fvt-restart-all/model/replicas/workerpool0-0")) == 2

    assert vertex.fake.settings(maxReplicaRestarts=0) == {"maxReplicaRestarts": 0}
    job = submit("fvt-no-restart")
    kill_worker(job)
    with pytest.raises(RuntimeError, match=r"workerpool1-0 exited with a non-zero status of 137 \(killed by signal 9"):
        job.wait_for_completion()
    vertex.fake.reset()
    assert vertex.fake.settings() == {"maxReplicaRestarts": 1}


def test_cancel_stops_every_replica(vertex):
    job = aiplatform.CustomJob(
        display_name="fvt-cancel",
        base_output_dir=f"{vertex.gs}/cancel",
        worker_pool_specs=[pool(1, ("--sleep", "60")), pool(2, ("--sleep", "60")), pool(1, ("--sleep", "60"))],
    )
    job.submit()
    replicas = wait_until(
        lambda: (
            [r for r in vertex.fake.replicas(job.name) if r["alive"]]
            if len([r for r in vertex.fake.replicas(job.name) if r["alive"]]) == 4
            else None
        ),
        what="4 replicas",
    )
    assert job.state == job_state.JobState.JOB_STATE_RUNNING
    with pytest.raises(exceptions.BadRequest, match="cancel it before deleting"):
        job.delete()
    started = time.perf_counter()
    job.cancel()
    wait_until(lambda: job.state in jobs._JOB_COMPLETE_STATES, what="the job to end")
    assert time.perf_counter() - started < 8
    assert job.state == job_state.JobState.JOB_STATE_CANCELLED and job.error.code == 1
    assert all(_gone(r["pid"]) for r in replicas)
    with pytest.raises(exceptions.BadRequest, match="cannot be cancelled"):
        job.cancel()
    job.delete()
    with pytest.raises(exceptions.NotFound):
        aiplatform.CustomJob.get(job.resource_name)


def test_python_package_spec_images_and_validation(vertex):
    vertex.bucket.blob("pkg/trainer-0.1.tar.gz").upload_from_string(b"not really a package")
    executor = "us-docker.pkg.dev/vertex-ai/training/tf-cpu.2-17.py310:latest"

    def package_pool(uri: str) -> dict:
        return {
            "machine_spec": {"machine_type": "n1-standard-4"},
            "replica_count": 1,
            "python_package_spec": {
                "executor_image_uri": executor,
                "package_uris": [uri],
                "python_module": "tests.fakes.vertex.replica_script",
                "args": ["--sleep", "0"],
                "env": [{"name": "WHERE", "value": "$(AIP_MODEL_DIR)"}],
            },
        }

    job = aiplatform.CustomJob(
        display_name="fvt-package",
        base_output_dir=f"{vertex.gs}/pkg-out",
        worker_pool_specs=[package_pool(f"{vertex.gs}/pkg/trainer-0.1.tar.gz")],
    )
    job.run()
    (record,) = vertex.records("pkg-out/model/replicas/")
    assert record["argv"] == ["--sleep", "0"] and record["env"]["AIP_MODEL_DIR"] == f"{vertex.gs}/pkg-out/model/"
    assert vertex.fake.replicas(job.name)[0]["env"]["WHERE"] == f"{vertex.gs}/pkg-out/model/"

    missing = aiplatform.CustomJob(
        display_name="fvt-missing",
        base_output_dir=f"{vertex.gs}/missing",
        worker_pool_specs=[package_pool(f"{vertex.gs}/pkg/missing.tar.gz")],
    )
    with pytest.raises(RuntimeError, match=f"No URLs matched: {vertex.gs}/pkg/missing.tar.gz"):
        missing.run()
    assert vertex.fake.replicas(missing.name) == []
    no_command = aiplatform.CustomJob(
        display_name="fvt-image",
        worker_pool_specs=[
            {
                "machine_spec": {"machine_type": "n1-standard-4"},
                "replica_count": 1,
                "container_spec": {"image_uri": "us-docker.pkg.dev/acme/no-entrypoint:1"},
            }
        ],
    )
    with pytest.raises(RuntimeError, match="has no container_spec.command"):
        no_command.run()

    for pools, message in (
        ([pool(2)], "must be 1"),
        ([pool(), pool()] * 3, "at most 4"),
        ([pool(1, machine_spec={"machine_type": "n9-huge"})], "Machine type"),
        ([{"machine_spec": {"machine_type": "n1-standard-4"}, "replica_count": 1}], "exactly one"),
    ):
        with pytest.raises(exceptions.BadRequest, match=message):
            aiplatform.CustomJob(display_name="fvt-bad", worker_pool_specs=pools).submit()


def _tuning_job(
    vertex, name: str, args: tuple[str, ...], *, trials: int = 4, parallel: int = 2, max_failed: int = 0
) -> "aiplatform.HyperparameterTuningJob":
    trial_job = aiplatform.CustomJob(
        display_name=f"{name}-trial",
        base_output_dir=f"{vertex.gs}/{name}",
        worker_pool_specs=[pool(1, ("--report", *args))],
    )
    return aiplatform.HyperparameterTuningJob(
        display_name=name,
        custom_job=trial_job,
        metric_spec={"score": "maximize"},
        parameter_spec={
            "lr": hpt.DoubleParameterSpec(min=1e-4, max=1e-1, scale="log"),
            "units": hpt.IntegerParameterSpec(min=8, max=64, scale="linear"),
            "act": hpt.CategoricalParameterSpec(values=["relu", "tanh", "gelu"]),
        },
        max_trial_count=trials,
        parallel_trial_count=parallel,
        max_failed_trial_count=max_failed,
    )


def test_tuning_job_runs_its_trials(vertex):
    job = _tuning_job(vertex, "fvt-hp", ("--sleep", "1", "--fail-trial", "3"), max_failed=2)
    started = time.perf_counter()
    job.run(sync=False)
    job.wait()
    seconds = time.perf_counter() - started
    assert job.state == job_state.JobState.JOB_STATE_SUCCEEDED and seconds < 12
    trials = job.trials
    assert [t.id for t in trials] == ["1", "2", "3", "4"]
    assert [t.state for t in trials] == [SUCCEEDED, SUCCEEDED, INFEASIBLE, SUCCEEDED]
    assert "exited with a non-zero status of 3" in trials[2].infeasible_reason
    assert "fails on purpose" in trials[2].infeasible_reason and not trials[2].final_measurement.metrics

    records = {r["env"]["CLOUD_ML_TRIAL_ID"]: r for r in vertex.records("fvt-hp/")}
    assert sorted(records) == ["1", "2", "3", "4"]
    for trial in trials:
        params = {p.parameter_id: p.value for p in trial.parameters}
        assert 1e-4 <= params["lr"] <= 1e-1 and 8 <= params["units"] <= 64 and params["units"] == int(params["units"])
        assert params["act"] in ("relu", "tanh", "gelu")
        record = records[trial.id]
        assert record["argv"][-3:] == [
            f"--lr={params['lr']!r}",
            f"--units={int(params['units'])}",
            f"--act={params['act']}",
        ]
        env = record["env"]
        assert env["AIP_MODEL_DIR"] == f"{vertex.gs}/fvt-hp/{trial.id}/model/"
        assert env["AIP_CHECKPOINT_DIR"] == f"{vertex.gs}/fvt-hp/{trial.id}/checkpoints/"
        assert env["CLOUD_ML_HP_METRIC_TAG"] == "score" and env["CLOUD_ML_HP_METRIC_FILE"].endswith("output.metrics")
        assert env["CLOUD_ML_JOB_ID"] == job.name
        assert json.loads(env["TF_CONFIG"])["task"] == {"type": "chief", "index": 0, "trial": trial.id}
        assert trial.start_time and trial.end_time and trial.end_time >= trial.start_time
        if trial.state == SUCCEEDED:  # the best of the three reports (BEST_MEASUREMENT, the SDK's default)
            (metric,) = trial.final_measurement.metrics
            assert metric.metric_id == "score" and metric.value == pytest.approx(score(record["params"]))
            assert trial.final_measurement.step_count == 2 and len(trial.measurements) == 3
    # never more than 2 trials at once, and 2 at once for a while
    spans = [(r["started"], r["ended"]) for r in records.values()]
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert overlap == 2
    (listed,) = aiplatform.HyperparameterTuningJob.list(filter='display_name="fvt-hp" AND state="JOB_STATE_SUCCEEDED"')
    assert [t.state for t in listed.trials] == [t.state for t in trials]


def test_tuning_failures_cancel_and_faults(vertex):
    job = _tuning_job(vertex, "fvt-hp-fail", ("--fail-trial", "2", "--slow-trial", "1"), max_failed=1)
    with pytest.raises(RuntimeError, match="1 trials failed, the maximum allowed"):
        job.run()
    trials = job.trials
    assert [(t.id, t.state) for t in trials] == [("1", INFEASIBLE), ("2", INFEASIBLE)]  # 3 and 4 never started
    assert "stopped before it ended" in trials[0].infeasible_reason
    assert all(_gone(r["pid"]) for r in vertex.fake.replicas(job.name))

    default_rule = _tuning_job(vertex, "fvt-hp-first", ("--fail-trial", "1"), parallel=1)
    with pytest.raises(RuntimeError, match="The first trial failed"):
        default_rule.run()
    assert len(default_rule.trials) == 1

    running = _tuning_job(vertex, "fvt-hp-cancel", ("--sleep", "60"))
    running.run(sync=False)
    alive = wait_until(
        lambda: (lambda rs: rs if len(rs) == 2 else None)(
            [r for r in vertex.fake.replicas() if r["alive"] and "fvt-hp-cancel" in r["env"]["AIP_MODEL_DIR"]]
        ),
        what="2 trials running",
    )
    running.wait_for_resource_creation()  # run(sync=False) stores the created job in a background thread
    running.cancel()
    with pytest.raises(RuntimeError, match="CANCELED"):
        running.wait()
    assert running.state == job_state.JobState.JOB_STATE_CANCELLED and all(_gone(r["pid"]) for r in alive)

    vertex.fake.fail("POST", r"/hyperparameterTuningJobs$", mode="job", code="RESOURCE_EXHAUSTED", message="no quota")
    doomed = _tuning_job(vertex, "fvt-hp-doomed", ())
    with pytest.raises(RuntimeError, match="no quota"):
        doomed.run()
    vertex.fake.fail("POST", r"/customJobs$", mode="job", message="worker pool lost")
    custom = aiplatform.CustomJob(display_name="fvt-doomed", worker_pool_specs=[pool()])
    with pytest.raises(RuntimeError, match="worker pool lost"):
        custom.run()
    assert custom.error.code == 13 and doomed.error.code == 8
    assert vertex.fake.replicas(custom.name) == [] and vertex.fake.replicas(doomed.name) == []
    with pytest.raises(exceptions.BadRequest, match="parallel_trial_count"):
        _tuning_job(vertex, "fvt-hp-bad", (), trials=2, parallel=3).run()


def test_suggestions_honour_types_scales_and_seed():
    spec = study.check_study(
        {
            "metrics": [{"metricId": "m", "goal": 1}],
            "parameters": [
                {"parameterId": "lr", "doubleValueSpec": {"minValue": 1e-4, "maxValue": 1.0}, "scaleType": 2},
                {"parameterId": "x", "doubleValueSpec": {"minValue": 1.0, "maxValue": 100.0}, "scaleType": 3},
                {"parameterId": "n", "integerValueSpec": {"minValue": "1", "maxValue": "1000"}, "scaleType": 2},
                {"parameterId": "k", "integerValueSpec": {"minValue": "2", "maxValue": "5"}, "scaleType": 1},
                {"parameterId": "bs", "discreteValueSpec": {"values": [16, 32, 64, 128]}},
                {"parameterId": "act", "categoricalValueSpec": {"values": ["relu", "tanh"]}},
            ],
        }
    )
    draws = [s for _, s in zip(range(4000), study.suggestions(spec, random.Random(5)))]
    values = {
        p: [next(v["value"] for v in d if v["parameterId"] == p) for d in draws]
        for p in ("lr", "x", "n", "k", "bs", "act")
    }
    assert all(1e-4 <= v <= 1.0 for v in values["lr"]) and all(isinstance(v, int) for v in values["n"] + values["k"])
    assert 0.45 < sum(v < 1e-2 for v in values["lr"]) / 4000 < 0.55  # log-uniform: half below the geometric mean
    assert 0.45 < sum(v > 91 for v in values["x"]) / 4000 < 0.55  # reverse log: half within 10 % of max
    assert 0.43 < sum(v <= math.sqrt(1000) for v in values["n"]) / 4000 < 0.57
    assert set(values["k"]) == {2, 3, 4, 5} and set(values["bs"]) == {16.0, 32.0, 64.0, 128.0}
    assert set(values["act"]) == {"relu", "tanh"}
    again = [s for _, s in zip(range(5), study.suggestions(spec, random.Random(5)))]
    assert again == draws[:5]  # deterministic for a seed

    grid = study.check_study(
        {
            "metrics": [{"metricId": "m", "goal": "MINIMIZE"}],
            "algorithm": 2,
            "parameters": [
                {"parameterId": "k", "integerValueSpec": {"minValue": "1", "maxValue": "2"}},
                {"parameterId": "act", "categoricalValueSpec": {"values": ["a", "b"]}},
            ],
        }
    )
    points = [tuple(v["value"] for v in s) for _, s in zip(range(5), study.suggestions(grid, random.Random()))]
    assert points == [(1, "a"), (1, "b"), (2, "a"), (2, "b"), (1, "a")]
    for bad, message in (
        ({"parameterId": "lr", "doubleValueSpec": {"minValue": 0, "maxValue": 1}, "scaleType": 2}, "greater than 0"),
        ({"parameterId": "bs", "discreteValueSpec": {"values": [4, 2]}}, "increasing"),
        ({"parameterId": "x"}, "exactly one"),
    ):
        with pytest.raises(Exception, match=message):
            study.check_study({"metrics": [{"metricId": "m", "goal": 1}], "parameters": [bad]})


def test_tuning_is_deterministic_with_the_fakes_seed(vertex, gcs_emulator, tmp_path):
    own = start_fake_vertex(gcs_emulator.url, tmp_path, seed=11)
    try:
        aiplatform.init(api_endpoint=own.url)
        seen = []
        for _ in range(2):
            job = _tuning_job(vertex, "fvt-hp-seed", (), trials=2, parallel=2)
            job.run()
            seen.append([[(p.parameter_id, p.value) for p in t.parameters] for t in job.trials])
            own.reset()  # a fresh start of the seed stream, as a new fake with the same --seed
        assert seen[0] == seen[1]
    finally:
        own.stop()
