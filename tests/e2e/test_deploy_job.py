"""`tfrun job=deploy source=… target=…` through the real command: one trained model (the suite's shared one),
deployed to TFLite and TF Serving without training again, each deploy checked against the source SavedModel; a
tampered or missing source stops before anything runs; a SavedModel folder, a sweep's best job, rerun --verify.
Its deploy to a web page is tests/e2e/test_web_target.py's digits test (the same deploy, checked there once: the
browser check is the expensive part)."""

from __future__ import annotations

import glob
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BIN, command_env, copy_trained, read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUICK = ["train.verbose=0", "train.callbacks.tensorboard=false"]
DEPLOY_STEPS = ["hardware", "data", "source"]
FEWER_TIMINGS = ["target.latency_requests=20", "target.large_batch_requests=2"]  # the deploy is tested, not timings


@pytest.fixture(scope="module")
def trained(trained_digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's copy of the suite's shared training run (runs/train), which every deploy here reads; the
    launch folder is returned."""
    return copy_trained(trained_digits, tmp_path_factory.mktemp("deploy"))


def _deploy(workdir: Path, name: str, *args: str, timeout: float = 400) -> dict[str, Any]:
    proc = tfrun("job=deploy", *args, f"hydra.run.dir=runs/{name}", cwd=workdir, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(workdir / "runs" / name)
    assert record["status"] == "succeeded" and record["job"] == "deploy"
    steps = [s["name"] for s in record["steps"]]
    assert steps[:3] == DEPLOY_STEPS and "train" not in steps and "export" not in steps, steps
    return record


def _linked_to_the_training_run(workdir: Path, record: dict[str, Any]) -> None:
    train = read_record(workdir / "runs/train")
    source = record["source"]
    export = next(a for a in train["artifacts"] if a["kind"] == "saved_model")
    assert source["run_id"] == train["run_id"] and source["record"] == "runs/train/record.json"
    assert source["saved_model"] == export["path"] and source["sha256"] == export["sha256"]
    assert source["weights_sha256"] == train["weights_sha256"] == record["weights_sha256"]
    assert record["metrics"]["final"]["holdout_accuracy"] == train["metrics"]["final"]["holdout_accuracy"]


def test_tflite_from_a_run_dir_then_rerun_verify(trained: Path):
    record = _deploy(trained, "tflite", "source=runs/train", "target=tflite")
    _linked_to_the_training_run(trained, record)
    evaluation = next(s["result"] for s in record["steps"] if s["name"] == "tflite_evaluate")
    assert evaluation["accuracy_drop"] <= 0.01, evaluation
    proc = subprocess.run(
        [str(BIN / "tfrun-records"), "rerun", "runs/tflite", "--verify", "--run-dir", "runs/tflite-rerun"],
        cwd=trained,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "verified" in proc.stdout
    assert read_record(trained / "runs/tflite-rerun")["source"]["sha256"] == record["source"]["sha256"]


def test_tfserving_serves_the_source_version_in_place_with_parity(trained: Path):
    record = _deploy(
        trained, "tfserving", "source=runs/train", "target=tfserving", "target.keep_running=false", *FEWER_TIMINGS
    )
    _linked_to_the_training_run(trained, record)
    parity = next(s["result"] for s in record["steps"] if s["name"] == "tfserving_parity")
    deployment = record["deployments"][0]
    assert deployment["parity"]["passed"] is True, deployment
    assert parity["summary"].startswith("REST and gRPC equal the source SavedModel models/digits_mlp/0001 bit-exactly")
    push = next(s["result"] for s in record["steps"] if s["name"] == "tfserving_push")
    assert push["copied"] is False and push["path"] == "models/digits_mlp/0001"

    # another repository: the source is copied in as a new version (a number that folder never used)
    (trained / "serving/digits_mlp/.rolled-back/0001-20260101-000000").mkdir(parents=True)
    record = _deploy(
        trained, "tfserving-copy", "source=runs/train", "target=tfserving", "target.base_path=serving", *FEWER_TIMINGS
    )
    push = next(s["result"] for s in record["steps"] if s["name"] == "tfserving_push")
    assert push["copied"] is True and push["path"] == "serving/digits_mlp/0002", push
    for name in ("saved_model.pb", *(p.name for p in (trained / "models/digits_mlp/0001/variables").iterdir())):
        sub = "" if name == "saved_model.pb" else "variables/"
        assert (trained / "serving/digits_mlp/0002" / sub / name).read_bytes() == (
            trained / "models/digits_mlp/0001" / sub / name
        ).read_bytes()
    assert record["deployments"][0]["parity"]["passed"]


def _rejected(workdir: Path, args: list[str], words: list[str], name: str) -> None:
    proc = tfrun("job=deploy", *args, f"hydra.run.dir=runs/{name}", cwd=workdir, timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert not (workdir / "runs" / name).exists(), "a rejected deploy leaves no run dir"


def test_a_tampered_or_missing_source_is_exit_2_naming_the_file(trained: Path, tmp_path: Path):
    copy = tmp_path / "copy"
    shutil.copytree(trained / "models", copy / "models")
    (copy / "runs/train").mkdir(parents=True)
    shutil.copy(trained / "runs/train/record.json", copy / "runs/train/record.json")
    data = Path(glob.glob(str(copy / "models/digits_mlp/0001/variables/variables.data-*"))[0])
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    _rejected(copy, ["source=runs/train", "target=tflite"], [f"variables/{data.name}", "has changed"], "tampered")
    _rejected(copy, ["source=runs/gone", "target=tflite"], ["runs/gone does not exist"], "missing")
    _rejected(copy, ["source=models:/digits@champion", "target=tflite"], ["no MLflow store at sqlite:///"], "registry")


def test_a_saved_model_folder_with_its_record_or_with_data_given(trained: Path, tmp_path: Path):
    record = _deploy(trained, "folder", "source=models/digits_mlp/0001", "target=tflite")
    assert record["source"]["kind"] == "saved_model" and record["source"]["run_id"]
    alone = tmp_path / "alone"  # a copy no record under runs/ names
    shutil.copytree(trained / "models/digits_mlp/0001", alone / "exports/0007")
    _rejected(alone, ["source=exports/0007", "target=tflite"], ["data=… on the command line", "exports/0007"], "nodata")
    record = _deploy(alone, "withdata", "source=exports/0007", "data=digits", "target=tflite")
    assert record["source"]["run_id"] is None and record["source"]["saved_model"] == "exports/0007"
    assert record["metrics"]["final"]["holdout_accuracy"] > 0.5


def test_the_best_job_of_a_sweep(tmp_path: Path):
    proc = tfrun(
        "-m",
        "train.epochs=1",
        "train.learning_rate=0.0001,0.01",
        *QUICK,
        "hydra.sweep.dir=multiruns/s",
        cwd=tmp_path,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((tmp_path / "multiruns/s/sweep.json").read_text())
    best = read_record(tmp_path / "multiruns/s" / str(summary["best"]["job"]))
    record = _deploy(tmp_path, "best", "source=multiruns/s/best", "target=tflite")
    assert record["source"]["kind"] == "sweep_best" and record["source"]["run_id"] == best["run_id"]
    export = next(a for a in best["artifacts"] if a["kind"] == "saved_model")
    assert record["source"]["saved_model"] == export["path"] and record["source"]["sha256"] == export["sha256"]


def test_the_dry_run_of_a_vertex_deploy_names_the_source_not_a_training(trained: Path):
    args = [
        "target=vertex_endpoint",
        "cloud=gcp",
        "cloud.project=my-proj",
        "cloud.bucket=my-bucket",
        "cloud.dry_run=true",
    ]
    proc = tfrun("job=deploy", "source=runs/train", *args, "hydra.run.dir=runs/dry", cwd=trained, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    run_id = read_record(trained / "runs/train")["run_id"]
    assert f"1. deploy the source SavedModel models/digits_mlp/0001 (run {run_id}" in proc.stdout, proc.stdout
    assert "gs://my-bucket/tfrun/digits_mlp/0001/" in proc.stdout and "train and export" not in proc.stdout
    assert not (trained / "runs/dry").exists()
