"""MLflow's model registry through the real commands, against a real MLflow server (tests/fakes/mlflow_server.py):
two runs with track.register=true become versions 1 and 2 (read back with MlflowClient), job=promote moves the
alias champion from 1 to 2, job=deploy source=models:/NAME@champion deploys version 2's weights; a sweep's best
job registered afterwards; unknown names, versions, aliases and an unreachable server are exit 2 before anything."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, assert_rejected, command_env, free_port, read_record, run_tfrun, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUICK = ["train.epochs=1", "data.limit=400", "train.verbose=0", "train.callbacks.tensorboard=false"]
NAME = "digits_mlp"


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def show(workdir: Path, run: str) -> str:
    proc = subprocess.run(
        [str(BIN / "tfrun-records"), "show", run], cwd=workdir, env=command_env(), capture_output=True, text=True
    )
    return ok(proc).stdout


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory, mlflow_server: str) -> Path:
    """Two training runs (different seeds, so different weights) registered as versions 1 and 2."""
    workdir = tmp_path_factory.mktemp("registry")
    for n, seed in ((1, 1), (2, 2)):
        track = ["track=mlflow", f"track.uri={mlflow_server}", "track.register=true"]
        proc = ok(tfrun(*track, *QUICK, f"train.seed={seed}", f"hydra.run.dir=runs/r{n}", cwd=workdir, timeout=600))
        assert f"[tfrun] MLflow registry: {NAME} version {n} (models:/{NAME}/{n})" in proc.stdout, proc.stdout
    return workdir


def test_two_registered_runs_are_versions_1_and_2_tagged_with_their_records(registered: Path, mlflow_server: str):
    mlflow = client(mlflow_server)
    for n in (1, 2):
        record = read_record(registered / f"runs/r{n}")
        export = next(a for a in record["artifacts"] if a["kind"] == "saved_model")
        assert record["registry"] == {
            "registry": "mlflow",
            "uri": mlflow_server,
            "model": NAME,
            "version": n,
            "reference": f"models:/{NAME}/{n}",
            "mlflow_run_id": record["registry"]["mlflow_run_id"],
        }
        version = mlflow.get_model_version(NAME, str(n))
        assert version.run_id == record["registry"]["mlflow_run_id"]
        assert mlflow.get_run(version.run_id).data.tags["tfrun.run_id"] == record["run_id"]
        assert version.tags["tfrun.run_id"] == record["run_id"]
        assert version.tags["tfrun.weights_sha256"] == record["weights_sha256"]
        assert version.tags["tfrun.saved_model_sha256"] == export["sha256"]
        accuracy = record["metrics"]["final"]["holdout_accuracy"]
        assert float(version.tags["tfrun.metric.holdout_accuracy"]) == pytest.approx(accuracy)
        artifacts = {a.path for a in mlflow.list_artifacts(version.run_id, "tfrun_model")}
        assert artifacts == {"tfrun_model/record.json", "tfrun_model/saved_model"}, artifacts
    assert (
        read_record(registered / "runs/r1")["weights_sha256"] != read_record(registered / "runs/r2")["weights_sha256"]
    )
    assert f"models:/{NAME}/2 (version 2 of {NAME})" in show(registered, "runs/r2")


def test_promote_then_deploy_the_alias_deploys_version_2s_weights(registered: Path, mlflow_server: str):
    track = ["track=mlflow", f"track.uri={mlflow_server}"]
    ok(
        tfrun(
            "job=promote", f"source=models:/{NAME}/1", "alias=champion", *track, "hydra.run.dir=runs/p1", cwd=registered
        )
    )
    first = read_record(registered / "runs/p1")
    assert first["status"] == "succeeded" and [s["name"] for s in first["steps"]] == ["promote"]
    assert first["promotion"]["version"] == 1 and first["promotion"]["previous_version"] is None
    ok(
        tfrun(
            "job=promote", f"source=models:/{NAME}/2", "alias=champion", *track, "hydra.run.dir=runs/p2", cwd=registered
        )
    )
    promotion = read_record(registered / "runs/p2")["promotion"]
    assert promotion == {
        "registry": "mlflow",
        "uri": mlflow_server,
        "source": f"models:/{NAME}/2",
        "model": NAME,
        "alias": "champion",
        "version": 2,
        "previous_version": 1,
        "undo": f"source=models:/{NAME}/1 alias=champion",
    }
    assert client(mlflow_server).get_model_version_by_alias(NAME, "champion").version == "2"

    # the tracking URI from MLflow's own variable this time (track=none)
    args = ["job=deploy", f"source=models:/{NAME}@champion", "target=tflite", "hydra.run.dir=runs/d"]
    proc = run_tfrun(args, registered, command_env(MLFLOW_TRACKING_URI=mlflow_server), timeout=600)
    ok(proc)
    deploy = read_record(registered / "runs/d")
    train = read_record(registered / "runs/r2")
    export = next(a for a in train["artifacts"] if a["kind"] == "saved_model")
    source = deploy["source"]
    assert deploy["status"] == "succeeded" and source["kind"] == "registry"
    assert source["given"] == f"models:/{NAME}@champion" and source["run_id"] == train["run_id"]
    assert source["registry"]["name"] == NAME and source["registry"]["version"] == 2
    assert source["registry"]["alias"] == "champion"
    assert deploy["weights_sha256"] == train["weights_sha256"] == source["weights_sha256"]
    assert source["sha256"] == export["sha256"] == source["recorded_sha256"]
    assert deploy["metrics"]["final"]["holdout_accuracy"] == train["metrics"]["final"]["holdout_accuracy"]
    assert deploy["config"]["data"] == train["config"]["data"]  # the source run's data config, adopted
    assert f"{NAME}@champion: version 1 → 2 (mlflow)" in show(registered, "runs/p2")
    assert f"models:/{NAME}@champion → {NAME} version 2" in show(registered, "runs/d")


def _rejected(workdir: Path, args: list[str], words: list[str], name: str, **env: str) -> None:
    proc = run_tfrun([*args, f"hydra.run.dir=runs/{name}"], workdir, command_env(**env), timeout=120)
    assert_rejected(proc, words, workdir / "runs" / name)


def test_unknown_names_versions_aliases_and_a_silent_server_are_exit_2(registered: Path, mlflow_server: str):
    track = ["track=mlflow", f"track.uri={mlflow_server}"]
    promote = ["job=promote", "alias=champion", *track]
    _rejected(registered, [*promote, f"source=models:/{NAME}/9"], [f"{NAME} has no version 9", "1, 2"], "v9")
    _rejected(registered, [*promote, "source=models:/nope/1"], ["no registered model 'nope'", NAME], "nope")
    deploy = ["job=deploy", "target=tflite", *track]
    _rejected(registered, [*deploy, f"source=models:/{NAME}@gold"], ["no alias 'gold'", "champion → version"], "gold")
    nowhere = f"http://127.0.0.1:{free_port()}"
    _rejected(
        registered,
        ["job=promote", "alias=champion", f"source=models:/{NAME}/1"],
        [f"the MLflow server at {nowhere} did not answer"],
        "silent",
        MLFLOW_TRACKING_URI=nowhere,
    )
    assert client(mlflow_server).get_model_version_by_alias(NAME, "champion").version == "2"  # nothing moved


def test_a_sweeps_best_job_is_registered_without_training_again(registered: Path, mlflow_server: str):
    track = ["track=mlflow", f"track.uri={mlflow_server}"]
    args = ["-m", *track, "train.learning_rate=0.0001,0.01", *QUICK, "hydra.sweep.dir=multiruns/s"]
    ok(tfrun(*args, cwd=registered, timeout=900))
    summary = json.loads((registered / "multiruns/s/sweep.json").read_text())
    best = registered / "multiruns/s" / str(summary["best"]["job"])
    trained = (registered / "models" / NAME).iterdir()
    before = sorted(p.name for p in trained)
    proc = subprocess.run(
        [str(BIN / "tfrun-records"), "sweep", "multiruns/s", "--register"],
        cwd=registered,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    ok(proc)
    assert f"{NAME} version 3 (models:/{NAME}/3)" in proc.stdout, proc.stdout
    record = read_record(best)
    assert record["registry"]["version"] == 3
    version = client(mlflow_server).get_model_version(NAME, "3")
    assert version.tags["tfrun.run_id"] == record["run_id"]
    assert version.tags["tfrun.weights_sha256"] == record["weights_sha256"]
    assert sorted(p.name for p in (registered / "models" / NAME).iterdir()) == before  # nothing trained again
