"""A user's data loader's return value, checked (tfrun.tasks.data.user_arrays) and called (tfrun.tasks.user_calls), without TensorFlow."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from tfrun.tasks.data.splits import Splits
from tfrun.tasks.data.user_arrays import to_splits
from tfrun.tasks.user_calls import UserCodeError, call, resolve

NODE = {
    "_target_": "mydata.load",
    "name": "mine",
    "holdout_fraction": 0.2,
    "validation_fraction": 0.1,
    "limit": None,
    "shuffle_buffer": 100,
}


def examples(n: int = 100, classes: int = 4, dtype: str = "float32") -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, 3)).astype(dtype), np.arange(n) % classes


def test_x_and_y_are_split_stratified_with_metadata_defaults():
    x, y = examples()
    splits, notes = to_splits({"x": x, "y": y}, "mydata.load", NODE, seed=1)
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_holdout)) == (72, 8, 20)
    assert splits.input_name == "features" and splits.scale == 1.0 and splits.n_classes == 4 and notes == []
    assert sorted(np.bincount(splits.y_holdout)) == [5, 5, 5, 5]


def test_own_splits_float64_labels_and_limit():
    x, y = examples(dtype="float64")
    result = {
        "train": (x[:60], y[:60].astype("float64")),
        "holdout": (x[60:], y[60:]),
        "input_name": "sensors",
        "scale": 5,
        "n_classes": 6,
    }
    splits, notes = to_splits(result, "mydata.load", {**NODE, "limit": 30}, seed=1)
    assert splits.x_train.dtype == np.float32 and notes == ["input cast from float64 to float32"]
    assert (len(splits.x_train), len(splits.x_valid), len(splits.x_holdout)) == (30, 0, 6)
    assert splits.y_train.dtype == np.int64 and splits.n_classes == 6 and splits.input_name == "sensors"


def test_a_splits_object_is_taken_as_it_is():
    x, y = examples()
    given = Splits(x[:80], y[:80], x[80:90], y[80:90], x[90:], y[90:], input_name="pixels", scale=2.0, n_classes=4)
    splits, _ = to_splits(given, "mydata.load", NODE, seed=1)
    assert splits.input_name == "pixels" and len(splits.x_valid) == 10


x, y = examples()


@pytest.mark.parametrize(
    "result, words",
    [
        pytest.param(
            {"x": x, "y": y, "n_classes": 3},
            ["mydata.load returned labels out of range", "[3]", "integers in [0, 3) with n_classes=3"],
            id="labels-out-of-range",
        ),
        pytest.param({"x": x, "y": y - 1}, ["labels out of range", "[-1]"], id="negative-labels"),
        pytest.param(
            {"x": x, "y": np.eye(4)[y]}, ["shape [100, 4]", "one-hot labels: return y.argmax(axis=1)"], id="one-hot"
        ),
        pytest.param({"x": x, "y": y + 0.5}, ["non-integer values"], id="float-labels"),
        pytest.param({"x": x, "y": np.array(["a", "b"] * 50)}, ["dtype <U1", "map class names"], id="string-labels"),
        pytest.param({"x": x, "y": y[:50]}, ["100 examples in x but 50 labels in y"], id="lengths-differ"),
        pytest.param({"x": x}, ["returned x without y"], id="x-alone"),
        pytest.param({"x": x, "y": y, "labels": y}, ["unknown key(s) ['labels']"], id="unknown-key"),
        pytest.param([x, y], ["returned list", "a dict with x and y"], id="a-list"),
        pytest.param(None, ["returned None"], id="none"),
        pytest.param({"train": (x, y)}, ["neither x/y nor train and holdout"], id="no-holdout"),
        pytest.param(
            {"train": (x, y), "holdout": (x[:5, :2], y[:5])},
            ["holdout examples of shape [2]", "[3]"],
            id="shapes-differ",
        ),
        pytest.param({"train": (x, y), "holdout": x}, ["holdout=ndarray; expected an (x, y) pair"], id="not-a-pair"),
        pytest.param({"x": x, "y": y, "input_name": "my input"}, ["input_name='my input'"], id="bad-input-name"),
        pytest.param({"x": x, "y": y, "scale": 0}, ["scale=0", "a number > 0"], id="bad-scale"),
        pytest.param({"x": x, "y": np.zeros(100, "int64")}, ["n_classes=1", "an integer >= 2"], id="one-class"),
        pytest.param(
            {"x": x.astype("complex64"), "y": y}, ["dtype", "complex64", "one of float32"], id="complex-input"
        ),
        pytest.param(
            {"x": x[:6], "y": np.array([0, 0, 0, 0, 0, 1])},
            ["cannot split the examples", "examples per class: {0: 5, 1: 1}"],
            id="class-too-small-to-stratify",
        ),
    ],
)
def test_a_bad_return_value_fails_naming_the_loader_and_the_problem(result, words: list[str]):
    with pytest.raises(UserCodeError) as info:
        to_splits(result, "mydata.load", NODE, seed=1)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert "mydata.load" in str(info.value)


@pytest.fixture
def mydata(monkeypatch):
    module = types.ModuleType("mydata_for_tests")

    def load(*, seed, size=10, holdout_fraction=0.5):
        return {"seed": seed, "size": size, "holdout_fraction": holdout_fraction}

    def takes_any(**kwargs):
        return kwargs

    def broken(*, size):
        raise KeyError("no such file")

    module.load, module.takes_any, module.broken, module.value = load, takes_any, broken, 3
    monkeypatch.setitem(sys.modules, "mydata_for_tests", module)
    return module


def test_call_passes_own_keys_and_only_the_tfrun_keys_the_function_names(mydata):
    node = {**NODE, "_target_": "mydata_for_tests.load", "size": 5}
    assert call(node, "data", "data", {"seed": 7}) == {"seed": 7, "size": 5, "holdout_fraction": 0.2}
    node = {**NODE, "_target_": "mydata_for_tests.takes_any"}
    assert call(node, "data", "data", {"seed": 7}) == {
        "seed": 7,
        "name": "mine",
        "holdout_fraction": 0.2,
        "validation_fraction": 0.1,
        "limit": None,
        "shuffle_buffer": 100,
    }


@pytest.mark.parametrize(
    "target, extra, words",
    [
        ("mydata_for_tests.broken", {"size": 1}, ["mydata_for_tests.broken raised KeyError: 'no such file'"]),
        (
            "mydata_for_tests.load",
            {"colour": 1},
            ["data._target_=mydata_for_tests.load cannot be called with", "colour"],
        ),
        ("mydata_for_tests.value", {}, ["is not a function or class (a int value)"]),
        ("mydata_for_tests.nothing", {}, ["mydata_for_tests has no nothing"]),
        ("no_module_for_tests.load", {}, ["no module 'no_module_for_tests' can be imported"]),
    ],
)
def test_call_failures_name_the_function(mydata, target: str, extra: dict, words: list[str]):
    with pytest.raises(UserCodeError) as info:
        call({**NODE, "_target_": target, **extra}, "data", "data", {"seed": 1})
    for word in words:
        assert word in str(info.value), str(info.value)


def test_an_import_error_inside_the_users_module_is_reported_as_such(tmp_path, monkeypatch):
    (tmp_path / "needs_missing_lib.py").write_text("import some_library_that_is_not_installed\ndef load(): ...\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserCodeError) as info:
        resolve("needs_missing_lib.load", "data")
    assert "importing needs_missing_lib failed: ModuleNotFoundError" in str(info.value)
    assert "some_library_that_is_not_installed" in str(info.value)


def test_the_report_shows_the_users_frames_and_none_of_tfruns(mydata):
    with pytest.raises(UserCodeError) as info:
        call({**NODE, "_target_": "mydata_for_tests.broken", "size": 1}, "data", "data", {"seed": 1})
    report = info.value.report()
    assert "in broken" in report and "raise KeyError" in report
    assert "tasks/user_calls.py" not in report and report.rstrip().endswith("raised KeyError: 'no such file'")
