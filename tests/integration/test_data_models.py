"""Other data sets and the CNN through the real command, on small files made here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import read_record, tfrun, write_idx

pytestmark = pytest.mark.slow


def test_fashion_mnist_layout_with_cnn_exports_uint8_signature(workdir: Path):
    rng = np.random.default_rng(1)
    folder = workdir / "fashion"
    folder.mkdir()
    for prefix, n in (("train", 300), ("t10k", 60)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 40, (n, 28, 28)) + labels[:, None, None] * 20  # learnable: brightness = class
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels)
    tfrun(
        "data=fashion_mnist",
        f"data.path={folder}",
        "model=cnn",
        "model.filters=[4]",
        "train.epochs=2",
        "hydra.run.dir=runs/fashion",
        cwd=workdir,
        check=True,
    )
    record = read_record(workdir / "runs/fashion")
    artifact = record["artifacts"][0]
    assert artifact["path"] == "models/fashion_mnist_cnn/0001"
    assert artifact["input"] == {"name": "pixels", "dtype": "uint8", "shape": [None, 28, 28]}
    assert record["steps"][2]["result"]["holdout"] == 60

    import tensorflow as tf

    serve = tf.saved_model.load(str(workdir / artifact["path"])).signatures["serving_default"]
    out = serve(pixels=tf.constant(np.zeros((3, 28, 28), np.uint8)))
    assert list(out) == ["probabilities"] and out["probabilities"].shape == (3, 10)  # the book's one output


def test_csv_files_with_mlp(workdir: Path):
    rng = np.random.default_rng(2)
    labels = np.arange(300) % 3
    features = rng.normal(size=(300, 5)) + labels[:, None] * 3
    lines = ["f0,f1,f2,f3,f4,target"] + [
        ",".join(f"{v:.4f}" for v in row) + f",{y}" for row, y in zip(features, labels)
    ]
    (workdir / "table.csv").write_text("\n".join(lines) + "\n")
    tfrun(
        "data=files",
        "data.path=table.csv",
        "data.label_column=target",
        "train.epochs=20",
        "train.learning_rate=0.01",
        "hydra.run.dir=runs/csv",
        cwd=workdir,
        check=True,
    )
    record = read_record(workdir / "runs/csv")
    assert record["metrics"]["final"]["holdout_accuracy"] > 0.9
    assert record["artifacts"][0]["input"] == {"name": "features", "dtype": "float32", "shape": [None, 5]}
