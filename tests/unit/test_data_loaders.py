"""Data loaders on small files made here: formats, splits, shapes (numpy and sklearn only)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import write_idx
from tfrun.tasks.core import datafiles
from tfrun.tasks.data import load_digits, load_fashion_mnist, load_files, load_mnist

COMMON = dict(
    seed=0,
    input_name="pixels",
    holdout_fraction=0.2,
    validation_fraction=0.1,
    limit=None,
    shuffle_buffer=100,
    image_shape=None,
)


def test_digits_splits_are_disjoint_and_stratified():
    splits = load_digits(name="digits", **COMMON)
    assert splits.input_shape == (8, 8) and splits.x_train.dtype == np.float32 and splits.n_classes == 10
    assert len(splits.x_train) + len(splits.x_valid) + len(splits.x_holdout) == 1797
    assert set(np.unique(splits.y_holdout)) == set(range(10))


def test_fashion_mnist_from_idx_files(tmp_path: Path):
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 200), ("t10k", 50)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.arange(n) % 10)
    assert datafiles.find_fashion_mnist(str(tmp_path)) == tmp_path
    splits = load_fashion_mnist(name="fashion_mnist", path=str(tmp_path), **COMMON)
    assert splits.x_train.dtype == np.uint8 and splits.input_shape == (28, 28)
    assert len(splits.x_holdout) == 50 and splits.scale == 255.0


def test_mnist_from_npz(tmp_path: Path):
    path = tmp_path / "mnist.npz"
    x = np.zeros((100, 28, 28), np.uint8)
    np.savez(path, x_train=x, y_train=np.arange(100) % 10, x_test=x[:20], y_test=np.arange(20) % 10)
    splits = load_mnist(name="mnist", path=str(path), download=False, **COMMON)
    assert len(splits.x_holdout) == 20 and len(splits.x_train) == 90


def test_mnist_absent_says_how_to_get_it(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="mnist.npz"):
        load_mnist(name="mnist", path=str(tmp_path / "none.npz"), download=False, **COMMON)


def test_csv_with_label_column_and_image_shape(tmp_path: Path):
    path = tmp_path / "d.csv"
    rows = ["label," + ",".join(f"p{i}" for i in range(4))]
    rows += [f"{i % 2}," + ",".join(str((i + j) % 5) for j in range(4)) for i in range(60)]
    path.write_text("\n".join(rows) + "\n")
    splits = load_files(
        name="files",
        path=str(path),
        format="auto",
        x_key="x",
        y_key="y",
        label_column="label",
        **{**COMMON, "image_shape": [2, 2]},
    )
    assert splits.input_shape == (2, 2) and splits.n_classes == 2 and splits.scale == 4.0


def test_npz_missing_array_names_keys(tmp_path: Path):
    path = tmp_path / "d.npz"
    np.savez(path, features=np.zeros((10, 3)), y=np.zeros(10))
    with pytest.raises(KeyError, match=r"no array\(s\) \['x'\].*data.x_key"):
        load_files(name="files", path=str(path), format="npz", x_key="x", y_key="y", label_column="label", **COMMON)


def test_format_inference():
    assert datafiles.files_format("a.NPZ", "auto") == "npz"
    assert datafiles.files_format("a.csv", "auto") == "csv"
    assert datafiles.files_format("a.txt", "auto") is None
    assert datafiles.files_format("a.txt", "csv") == "csv"
