"""Options checked against the data's known shape before TensorFlow starts (tfrun.runner.config.data_shape): a
data.limit too small to split, target=web's class names against the number of classes, an int8 calibration
sample larger than the training split. Each is a Problem naming key, value and what is allowed; before, each
failed after training (exit 1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import assert_rejected_offline
from tfrun.runner.config import data_shape
from tfrun.runner.config.validate import validate
from tfrun.tasks.core.problems import ConfigError
from tfrun.tasks.core.schema import MnistData

WEB = ["target=web"]


def _problems(compose_cfg, *overrides: str) -> list:
    try:
        validate(compose_cfg(*overrides))
    except ConfigError as err:
        return err.problems
    return []


def _keys(problems: list) -> list[str]:
    return [p.key for p in problems if p.key.startswith(("data.", "target.class_names", "target.representative"))]


def test_the_shape_is_what_the_loaders_split_gives(compose_cfg):
    """digits: 1797 examples, 10 classes; 150 of them -> 30 holdout, 12 validation, 108 training (the numbers the
    run's data step reports); mnist's test set is its holdout, so only the validation split comes off its rows."""
    digits = validate(compose_cfg()).data
    known, found = data_shape.shape(digits, 42)
    assert found == [] and known.classes == 10 and known.train == 1797 - 360 - 144
    known, _ = data_shape.shape(validate(compose_cfg("data.limit=150")).data, 42)
    assert known.train == 108 and known.described == "data=digits with data.limit=150"
    data = MnistData(limit=1000, path="unused.npz")  # not read: its rows and classes are known
    known, found = data_shape.shape(data, 42)
    assert found == [] and known.train == 900 and known.classes == 10


def test_a_limit_too_small_to_split_is_a_problem_naming_data_limit(compose_cfg):
    # 100 digits: 20 holdout, then 8 of the 80 for validation, fewer than the 10 classes (the data step's ValueError)
    (problem,) = [p for p in _problems(compose_cfg, "data.limit=100") if p.key.startswith("data.")]
    assert problem.key == "data.limit" and problem.value == 100
    assert "one example of each class in every split" in problem.allowed and "test_size = 8" in problem.allowed
    assert _problems(compose_cfg, "data.limit=120") == []
    assert _problems(compose_cfg, "data.limit=100", "data.validation_fraction=0.2") == []


def test_web_class_names_must_name_every_class(compose_cfg):
    (problem,) = _problems(compose_cfg, *WEB, "target.class_names=[a,b,c]")
    assert problem.key == "target.class_names" and problem.value == ["a", "b", "c"]
    assert "data=digits has 10 classes" in problem.allowed and "3 names were given" in problem.allowed
    names = ",".join(f"n{i}" for i in range(10))
    assert _problems(compose_cfg, *WEB, f"target.class_names=[{names}]") == []


def test_class_names_against_a_data_file(compose_cfg, tmp_path: Path):
    np.savez(tmp_path / "four.npz", x=np.zeros((80, 3), "float32"), y=np.arange(80) % 4)
    with open(tmp_path / "three.csv", "w") as f:
        f.write("a,b,label\n" + "".join(f"{i},{i},{i % 3}\n" for i in range(60)))
    files = ["data=files", f"data.path={tmp_path / 'four.npz'}"]
    assert _problems(compose_cfg, *WEB, *files, "target.class_names=[dim,low,mid,bright]") == []
    (problem,) = _problems(compose_cfg, *WEB, *files, "target.class_names=[dim,low,mid]")
    assert f"{tmp_path / 'four.npz'} has 4 classes" in problem.allowed
    csv = ["data=files", f"data.path={tmp_path / 'three.csv'}"]
    (problem,) = _problems(compose_cfg, *WEB, *csv, "target.class_names=[a,b]")
    assert "has 3 classes (ids 0..2), 2 names were given" in problem.allowed


def test_a_file_too_small_for_its_fractions_names_the_fraction(compose_cfg, tmp_path: Path):
    np.savez(tmp_path / "small.npz", x=np.zeros((30, 3), "float32"), y=np.arange(30) % 10)
    (problem,) = _problems(compose_cfg, "data=files", f"data.path={tmp_path / 'small.npz'}")
    assert problem.key == "data.holdout_fraction" and "30 examples" in problem.allowed


@pytest.mark.parametrize(
    "target",
    [
        ["target=tflite", "target.quantization=int8"],
        ["target=web", "target.format=tflite", "target.quantization=int8"],
    ],
    ids=["tflite", "web-tflite"],
)
def test_an_int8_sample_larger_than_the_training_split(compose_cfg, target: list[str]):
    (problem,) = _problems(compose_cfg, *target, "target.representative_samples=120", "data.limit=150")
    assert problem.key == "target.representative_samples" and problem.value == 120
    assert "at most the 108 training examples data=digits with data.limit=150" in problem.allowed
    assert _problems(compose_cfg, *target, "target.representative_samples=100", "data.limit=150") == []
    # float modes draw no sample
    assert _problems(compose_cfg, "target=tflite", "target.representative_samples=120", "data.limit=150") == []


def test_a_users_loader_is_not_read(compose_cfg):
    """data=digits pointed at another loader: its shape is not known before it runs, so nothing is checked."""
    data = validate(compose_cfg("data.limit=150")).data
    data._target_ = "my_project.load"
    assert data_shape.shape(data, 42) == (None, [])


def test_the_command_says_it_before_tensorflow(workdir: Path):
    assert_rejected_offline(
        ["target=tflite", "target.quantization=int8", "target.representative_samples=120", "data.limit=150"],
        ["target.representative_samples", "120", "108 training examples"],
        workdir,
    )
    assert_rejected_offline(["data.limit=100"], ["data.limit", "one example of each class"], workdir)


def test_an_image_shape_must_hold_an_examples_numbers(compose_cfg, tmp_path: Path):
    (problem,) = _problems(compose_cfg, "data.image_shape=[7,7]")
    assert problem.key == "data.image_shape" and problem.value == [7, 7]
    assert "a shape of 64 numbers, as many as each example of data=digits has (7 x 7 = 49)" in problem.allowed
    assert _problems(compose_cfg, "data.image_shape=[8,8,1]") == []
    np.savez(tmp_path / "flat.npz", x=np.zeros((40, 12), "uint8"), y=np.arange(40) % 2)
    files = ["data=files", f"data.path={tmp_path / 'flat.npz'}"]
    assert _problems(compose_cfg, *files, "data.image_shape=[3,4]") == []
    (problem,) = _problems(compose_cfg, *files, "data.image_shape=[4,4]")
    assert f"a shape of 12 numbers, as many as each example of {tmp_path / 'flat.npz'} has" in problem.allowed
    with open(tmp_path / "rows.csv", "w") as f:
        f.write("a,b,c,d,label\n" + "".join(f"{i},{i},{i},{i},{i % 2}\n" for i in range(40)))
    csv = ["data=files", f"data.path={tmp_path / 'rows.csv'}"]
    assert _problems(compose_cfg, *csv, "data.image_shape=[2,2]") == []
    assert [p.key for p in _problems(compose_cfg, *csv, "data.image_shape=[2,3]")] == ["data.image_shape"]
