"""The shipped presets through the real `tfrun`: `experiment=digits_tflite_int8` trains, exports and converts
to a full-integer TFLite file, and the record holds what the preset chose and the override that chose it;
`experiment=fashion_cnn_mirrored` trains the CNN on two replicas (small Fashion-MNIST files made here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_record, tfrun

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def test_the_int8_preset_trains_and_converts(tmp_path: Path):
    proc = tfrun("experiment=digits_tflite_int8", "train.epochs=2", "hydra.run.dir=runs/p", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(tmp_path / "runs/p")
    assert record["status"] == "succeeded"
    assert record["command"]["overrides"] == ["experiment=digits_tflite_int8", "train.epochs=2"]
    assert record["config"]["train"]["epochs"] == 2  # the command line over the preset's and the group's values
    assert record["config"]["target"]["quantization"] == "int8" and record["config"]["target"]["int8_io"] == "int8"
    assert [s["name"] for s in record["steps"]][-3:] == ["tflite_convert", "tflite_evaluate", "tflite_gate"]
    tflite = next(a for a in record["artifacts"] if a["kind"] == "tflite")
    assert tflite["path"] == "models/digits_mlp/0001.int8.tflite" and (tmp_path / tflite["path"]).is_file()
    assert tflite["quantization"] == "int8" and tflite["input_dtype"] == "int8" and tflite["accepted"] is True
    assert "[tfrun] tflite: models/digits_mlp/0001.int8.tflite" in proc.stdout


def test_the_mirrored_preset_trains_two_replicas_on_fashion_files(tmp_path: Path):
    import numpy as np

    from tests.helpers import write_idx

    rng = np.random.default_rng(1)
    folder = tmp_path / "fashion"
    folder.mkdir()
    for prefix, n in (("train", 300), ("t10k", 60)):
        labels = np.arange(n) % 10
        write_idx(
            folder / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 40, (n, 28, 28)) + labels[:, None, None] * 20
        )
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    proc = tfrun(
        "experiment=fashion_cnn_mirrored",
        f"data.path={folder}",
        "train.epochs=1",
        "model.filters=[4]",
        "hydra.run.dir=runs/m",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(tmp_path / "runs/m")
    config = record["config"]
    assert (config["data"]["name"], config["model"]["name"], config["strategy"]["name"]) == (
        "fashion_mnist",
        "cnn",
        "mirrored",
    )
    strategy = next(s["result"] for s in record["steps"] if s["name"] == "strategy")
    assert strategy["strategy"] == "mirrored" and strategy["replicas"] == 2, strategy
    assert strategy["global_batch_size"] == 64 and strategy["per_replica_batch_size"] == 32
    assert next(a for a in record["artifacts"] if a["kind"] == "saved_model")["path"] == "models/fashion_mnist_cnn/0001"
