"""The streaming example (examples/streaming) as its README runs it: TFRecord shards read by a tf.data factory train
tfrun's mlp on one device (bit-identical on a rerun), on two workers (each reading its own files) and into an int8
TFLite file calibrated on examples taken from the stream (after post-training or quantization-aware training)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, command_env, copy_example, read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_example("streaming", tmp_path_factory.mktemp("user") / "streaming")


@pytest.fixture(scope="module")
def first_run(project: Path) -> dict:
    tfrun("--config-dir", "conf", "experiment=streaming", "hydra.run.dir=runs/first", cwd=project, check=True)
    return read_record(project / "runs/first")


def step(record: dict, name: str) -> dict:
    return next(s["result"] for s in record["steps"] if s["name"] == name)


def test_the_example_trains_from_files_it_never_holds_in_memory(project: Path, first_run: dict):
    assert first_run["status"] == "succeeded"
    assert first_run["metrics"]["final"]["holdout_accuracy"] >= 0.9
    data = step(first_run, "data")
    assert data["summary"] == (
        "digits_stream: 1437 streamed train / 0 validation / 360 holdout, input pixels float32[8, 8]"
    )
    assert data["streamed"]["train"] == "streamlab.data.load's train factory (load.<locals>.train)"
    assert sorted(p.name for p in (project / "data").glob("*.tfrecord")) == [
        f"train-0000{i}-of-00004.tfrecord" for i in range(4)
    ]
    assert first_run["code"]["user"]["data"]["target"] == "streamlab.data.load"
    assert first_run["artifacts"][0]["input"] == {"name": "pixels", "dtype": "float32", "shape": [None, 8, 8]}


def test_a_rerun_of_a_streamed_run_is_bit_identical(project: Path, first_run: dict):
    proc = subprocess.run(
        [str(BIN / "tfrun-records"), "rerun", "runs/first", "--verify"],
        cwd=project,
        env=command_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "verified: identical metrics and weights" in proc.stdout


def test_two_workers_each_read_their_own_shards(project: Path, first_run: dict):
    proc = tfrun(
        "--config-dir",
        "conf",
        "experiment=streaming",
        "strategy=multi_worker",
        "cluster=local",
        "cluster.workers=2",
        "train.epochs=5",
        "hydra.run.dir=runs/workers",
        cwd=project,
        timeout=480,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(project / "runs/workers")
    assert step(record, "strategy")["replicas"] == 2
    assert "[worker:0] 45/45 - " in proc.stdout and "90/90" not in proc.stdout  # by file: ~719 examples, 16 a step
    assert record["metrics"]["final"]["holdout_accuracy"] >= 0.85


@pytest.mark.parametrize("qat", [False, True], ids=["post-training", "quantization-aware"])
def test_int8_tflite_is_calibrated_on_the_stream(project: Path, first_run: dict, qat: bool):
    proc = tfrun(
        "--config-dir",
        "conf",
        "experiment=streaming",
        "target=tflite",
        "target.quantization=int8",
        f"train.quantization_aware={str(qat).lower()}",
        f"hydra.run.dir=runs/int8-{qat}",
        cwd=project,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(project / f"runs/int8-{qat}")
    assert step(record, "tflite_convert")["representative_samples"] == 300
    assert bool(step(record, "train").get("quantization_aware_layers")) is qat
    (tflite,) = [a for a in record["artifacts"] if a["kind"] == "tflite"]
    assert tflite["accepted"] is True and (project / tflite["path"]).is_file()
    assert record["metrics"]["final"]["tflite_accuracy"] >= record["metrics"]["final"]["holdout_accuracy"] - 0.01
