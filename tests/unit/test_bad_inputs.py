"""Bad input never reaches TensorFlow: exit 2, a message naming key, value and what is allowed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import assert_rejected, tfrun

# (overrides, words the message must contain: key, bad value, allowed values)
BAD_INPUTS = [
    pytest.param(["data=nope"], ["data", "nope", "digits", "fashion_mnist", "files"], id="unknown-group-option"),
    pytest.param(["train.epochs=ten"], ["train.epochs", "ten", "Integer"], id="wrong-type"),
    pytest.param(["train.epochs=-1"], ["train.epochs", "-1", ">= 1"], id="negative-epochs"),
    pytest.param(
        ["hardware.logical_devices=0"], ["hardware.logical_devices", "0", "[1, 64]"], id="zero-logical-devices"
    ),
    pytest.param(
        ["data=files", "data.path=missing.npz"], ["data.path", "missing.npz", "existing"], id="missing-data-file"
    ),
    pytest.param(["data=files", "data.path=DATA_TXT"], ["data.format", "auto", "npz or csv"], id="unknown-data-format"),
    pytest.param(
        ["data=files", "data.format=parquet", "data.path=DATA_TXT"],
        ["data.format", "parquet", "npz", "csv"],
        id="invalid-format-name",
    ),
    pytest.param(["train.optimizer=adagrad"], ["train.optimizer", "adagrad", "sgd", "adam"], id="unknown-optimizer"),
    pytest.param(["train.learning_rate=0"], ["train.learning_rate", "0", "> 0"], id="zero-learning-rate"),
    pytest.param(["train.batch_size=0"], ["train.batch_size", "0", ">= 1"], id="zero-batch"),
    pytest.param(
        ["data.holdout_fraction=1.5"], ["data.holdout_fraction", "1.5", "(0.0, 1.0)"], id="holdout-out-of-range"
    ),
    pytest.param(["model.n_neurons=0"], ["model.n_neurons", "0", ">= 1"], id="zero-neurons"),
    pytest.param(["model.dropout=1.0"], ["model.dropout", "1.0", "[0.0, 1.0)"], id="dropout-one"),
    pytest.param(["train.epochs=3", "no_such_key=1"], ["no_such_key"], id="unknown-key"),
    pytest.param(
        ["data=fashion_mnist", "data.path=nowhere"],
        ["data.path", "nowhere", "apt-get install dataset-fashion-mnist"],
        id="fashion-mnist-absent",
    ),
    pytest.param(
        ["data=mnist", "data.path=nowhere/mnist.npz"],
        ["data.path", "mnist.npz", "data.download=true"],
        id="mnist-absent",
    ),
    pytest.param(["hardware.memory_growth=true"], ["hardware.kind", "cpu", "gpu"], id="gpu-knob-on-cpu"),
    pytest.param(
        ["hardware=gpu", "hardware.memory_limit_mb=1024"],
        ["hardware.memory_limit_mb", "1024", "memory_growth"],
        id="growth-and-limit",
    ),
    pytest.param(
        ["hardware=split_gpu", "hardware.logical_gpu_memory_mb=[]"],
        ["hardware.logical_gpu_memory_mb", "[]"],
        id="split-gpu-empty",
    ),
    pytest.param(
        ["model=cnn", "data=files", "data.path=DATA_CSV"], ["data.image_shape", "None", "cnn"], id="cnn-needs-images"
    ),
    pytest.param(["optimized_metric=f1"], ["optimized_metric", "f1", "holdout_accuracy"], id="unknown-metric"),
    pytest.param(["train.verbose=3"], ["train.verbose", "3", "0, 1, 2"], id="bad-verbosity"),
    pytest.param(["strategy.device=cpu0"], ["strategy.device", "cpu0", "/cpu:0"], id="bad-device-name"),
    pytest.param(["run.timeout_s=-5"], ["run.timeout_s", "-5", "> 0"], id="negative-timeout"),
]


@pytest.mark.parametrize("overrides, words", BAD_INPUTS)
def test_bad_input_exits_2_naming_key_value_and_allowed(workdir: Path, overrides: list[str], words: list[str]):
    (workdir / "data.txt").write_text("not data\n")
    (workdir / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    overrides = [o.replace("DATA_TXT", "data.txt").replace("DATA_CSV", "data.csv") for o in overrides]
    proc = tfrun(*overrides, "hydra.run.dir=runs/bad", cwd=workdir, timeout=60)
    assert_rejected(proc, words, workdir / "runs" / "bad")
    assert not list(workdir.rglob("record.json")), "a rejected config must not leave a record"


def test_all_problems_reported_at_once(workdir: Path):
    proc = tfrun("train.epochs=0", "train.batch_size=0", "model.n_neurons=0", cwd=workdir, timeout=60)
    assert proc.returncode == 2
    for key in ("train.epochs", "train.batch_size", "model.n_neurons"):
        assert key in proc.stderr
