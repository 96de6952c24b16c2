"""track=mlflow and `tfrun-records mlflow` against a real MLflow tracking server (tests/fakes/mlflow_server.py:
127.0.0.1, a free port, a temporary store) and the default local store, read back with MlflowClient and
compared field by field with the records."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, command_env, free_port, read_record, tfrun
from tfrun.runner.records.record import flatten

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUICK = ["train.epochs=2", "train.verbose=0", "train.callbacks.tensorboard=false"]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One project folder for the module: the backfill test sends the records the tests before it wrote."""
    return tmp_path_factory.mktemp("project")


@pytest.fixture(scope="module")
def server(mlflow_server: str) -> str:
    """This module's MLflow server (tests/fakes/mlflow_server.py)."""
    return mlflow_server


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def run_of(mlflow: Any, record: dict) -> Any:
    (run,) = mlflow.search_runs(
        [mlflow.get_experiment_by_name("tfrun").experiment_id],
        filter_string=f"tags.`tfrun.run_id` = '{record['run_id']}'",
    )
    return run


def assert_same(mlflow: Any, run: Any, record: dict, status: str) -> None:
    """The MLflow run holds the record: params, per-epoch and final metrics, tags, artifacts, status."""
    assert run.info.status == status
    params = {k: str(v)[:6000] for k, v in flatten(record["config"]).items()}
    assert run.data.params == params
    for name, values in record["metrics"]["history"].items():
        history = sorted(mlflow.get_metric_history(run.info.run_id, name), key=lambda m: m.step)
        assert [(m.step, m.value) for m in history] == [(i, pytest.approx(v)) for i, v in enumerate(values)], name
    for name, value in record["metrics"]["final"].items():
        if not record["metrics"]["history"].get(name):
            assert run.data.metrics[name] == pytest.approx(value), name
    tags = run.data.tags
    assert tags["tfrun.status"] == record["status"] and tags["tfrun.run_id"] == record["run_id"]
    assert tags["mlflow.source.git.commit"] == record["code"]["git_commit"]
    assert tags["tfrun.command"].startswith("tfrun ")
    artifacts = {a.path for a in mlflow.list_artifacts(run.info.run_id)}
    assert {"record.json", "run.log", ".mlflow-config.json"} <= artifacts, artifacts
    sent = json.loads(Path(mlflow.download_artifacts(run.info.run_id, "record.json")).read_text())
    assert sent["run_id"] == record["run_id"] and sent["status"] == record["status"]


@pytest.fixture(scope="module")
def tracked(workdir: Path, server: str) -> dict[str, Any]:
    """The module's tracked runs, made once whatever tests are selected: a run, a sweep of two, a failed run and
    an interrupted one (the backfill test sends these same records again)."""
    done: dict[str, Any] = {}
    done["one"] = tfrun("track=mlflow", f"track.uri={server}", *QUICK, "hydra.run.dir=runs/one", cwd=workdir)
    done["sweep"] = tfrun(
        "-m",
        "track=mlflow",
        f"track.uri={server}",
        "train.learning_rate=1e-3,1e-2",
        *QUICK,
        "hydra.sweep.dir=multiruns/lr",
        cwd=workdir,
    )
    rows = [f"{i % 7},{i % 2}" for i in range(100)]
    rows[60] = "seven,0"  # a text feature: the loader meets it in the child (validation reads only the labels)
    (workdir / "bad.csv").write_text("a,label\n" + "\n".join(rows) + "\n")
    done["failed"] = tfrun(
        "track=mlflow",
        f"track.uri={server}",
        "data=files",
        "data.path=bad.csv",
        *QUICK,
        "hydra.run.dir=runs/failed",
        cwd=workdir,
    )
    proc = subprocess.Popen(
        [str(BIN / "tfrun"), "track=mlflow", f"track.uri={server}", "train.epochs=1000", "hydra.run.dir=runs/stopped"],
        cwd=workdir,
        env=command_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    path = workdir / "runs/stopped/record.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (
        path.exists() and json.loads(path.read_text())["metrics"]["history"].get("loss")
    ):
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    done["stopped"] = subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
    return done


def test_a_run_and_a_sweep_appear_as_their_records(workdir: Path, server: str, tracked: dict[str, Any]):
    proc = tracked["one"]
    assert proc.returncode == 0 and "[tfrun] MLflow: run " in proc.stdout, proc.stdout + proc.stderr
    mlflow = client(server)
    record = read_record(workdir / "runs/one")
    assert_same(mlflow, run_of(mlflow, record), record, "FINISHED")

    sweep = tracked["sweep"]
    assert sweep.returncode == 0, sweep.stdout + sweep.stderr
    summary = json.loads((workdir / "multiruns/lr/sweep.json").read_text())
    experiment = mlflow.get_experiment_by_name("tfrun").experiment_id
    (parent,) = mlflow.search_runs([experiment], filter_string="tags.`tfrun.sweep_dir` LIKE '%multiruns/lr'")
    assert parent.data.tags["tfrun.best_job"] == summary["best"]["job"] and parent.info.status == "FINISHED"
    children = mlflow.search_runs([experiment], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'")
    assert sorted(c.data.tags["tfrun.sweep_job"] for c in children) == ["0", "1"]
    for child in children:
        job = read_record(workdir / "multiruns/lr" / child.data.tags["tfrun.sweep_job"])
        assert_same(mlflow, child, job, "FINISHED")
        assert (
            child.data.tags["tfrun.best"] == str(child.data.tags["tfrun.sweep_job"] == summary["best"]["job"]).lower()
        )


def test_failed_and_interrupted_runs_end_failed_and_killed(workdir: Path, server: str, tracked: dict[str, Any]):
    assert tracked["failed"].returncode == 1
    mlflow = client(server)
    record = read_record(workdir / "runs/failed")
    run = run_of(mlflow, record)
    assert_same(mlflow, run, record, "FAILED")
    assert run.data.tags["tfrun.error"].startswith("DataFileError")

    assert tracked["stopped"].returncode == 130, tracked["stopped"].stdout
    record = read_record(workdir / "runs/stopped")
    assert_same(mlflow, run_of(mlflow, record), record, "KILLED")


def test_backfill_twice_sends_each_record_once_and_the_local_store_opens_as_it_is(
    workdir: Path, server: str, tracked: dict[str, Any]
):
    """The module's tracked runs (3 runs, a sweep of 2), sent to a new experiment twice."""
    runs = [workdir / "runs" / name for name in ("one", "failed", "stopped")]
    assert all((p / "record.json").is_file() for p in runs), runs
    for attempt in ("first", "again"):
        proc = subprocess.run(
            [str(BIN / "tfrun-records"), "mlflow", "runs", "multiruns", "--uri", server, "--experiment", "backfill"],
            cwd=workdir,
            env=command_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr
        expected = "5 run(s) sent" if attempt == "first" else "0 run(s) sent"
        assert expected in proc.stdout, proc.stdout
    mlflow = client(server)
    backfilled = mlflow.search_runs([mlflow.get_experiment_by_name("backfill").experiment_id])
    assert len(backfilled) == 6  # 3 runs, the sweep's parent and its two jobs
    for path in runs:
        record = read_record(path)
        (run,) = [r for r in backfilled if r.data.tags.get("tfrun.run_id") == record["run_id"]]
        assert (
            run.info.status == {"succeeded": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}[record["status"]]
        )

    local = tfrun("track=mlflow", *QUICK, "hydra.run.dir=runs/local", cwd=workdir)  # the default: mlflow.db here
    assert local.returncode == 0, local.stdout + local.stderr
    mlflow = client(f"sqlite:///{workdir / 'mlflow.db'}")
    record = read_record(workdir / "runs/local")
    assert_same(mlflow, run_of(mlflow, record), record, "FINISHED")


def test_an_unreachable_server_warns_unless_it_is_required(tmp_path: Path):
    workdir = tmp_path  # its own folder: the backfill sends every record under the module's runs/
    nowhere = f"http://127.0.0.1:{free_port()}"
    proc = tfrun(
        "track=mlflow", f"track.uri={nowhere}", "track.timeout_s=1", *QUICK, "hydra.run.dir=runs/w", cwd=workdir
    )
    assert proc.returncode == 0 and read_record(workdir / "runs/w")["status"] == "succeeded"
    warnings = [line for line in proc.stderr.splitlines() if "MLflow" in line]
    assert len(warnings) == 1 and "the record has everything" in warnings[0], proc.stderr
    assert f"the tracking server at {nowhere} did not answer" in warnings[0], warnings[0]
    assert "Retrying" not in proc.stderr, proc.stderr  # urllib3's retry lines: the one warning says it all
    required = tfrun(
        "track=mlflow",
        f"track.uri={nowhere}",
        "track.required=true",
        "track.timeout_s=1",
        *QUICK,
        "hydra.run.dir=runs/r",
        cwd=workdir,
    )
    assert required.returncode == 2 and "track.uri" in required.stderr and "track.required=true" in required.stderr
    assert not (workdir / "runs/r").exists(), "stopped before training"
