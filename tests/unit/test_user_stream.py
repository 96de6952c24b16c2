"""A loader returning a tf.data.Dataset factory: what Python can check (tfrun.tasks.data.user_arrays, tfrun.tasks.data.user_streams), without
TensorFlow. TensorFlow's own checks are in tests/integration/test_user_stream.py, the strategies in tests/e2e."""

from __future__ import annotations

import functools
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import ROOT
from tfrun.tasks.data.user_arrays import to_splits
from tfrun.tasks.data.user_streams import Factory, StreamedSplits, _first_line, takes_context
from tfrun.tasks.user_calls import UserCodeError

NODE = {
    "_target_": "mydata.load",
    "name": "mine",
    "holdout_fraction": 0.2,
    "validation_fraction": 0.1,
    "limit": None,
    "shuffle_buffer": 100,
}
RNG = np.random.default_rng(0)
X, Y = RNG.normal(size=(40, 3)).astype("float32"), np.arange(40) % 4


def make_train():  # never called here: only TensorFlow could make the dataset
    raise AssertionError("the factory must not be called by the pure-Python checks")


def streamed(**extra) -> dict:
    return {"train": make_train, "holdout": (X, Y), "n_classes": 4, **extra}


# A stand-in for tf.data.Dataset: tfrun recognises one by its class, without importing TensorFlow
DatasetV2 = type("DatasetV2", (), {"__module__": "tensorflow.python.data.ops.dataset_ops"})
FakeDataset = type(
    "_TensorSliceDataset", (DatasetV2,), {"__module__": "tensorflow.python.data.ops.from_tensor_slices_op"}
)


def test_a_train_factory_with_the_holdout_in_memory():
    splits, notes = to_splits(
        streamed(train_examples=500, input_name="sensors", scale=2, input_shape=[3], input_dtype="float32"),
        "mydata.load",
        NODE,
        seed=1,
    )
    assert isinstance(splits, StreamedSplits) and notes == []
    assert splits.train == Factory(make_train, "train", "mydata.load", takes_context=False)
    assert (splits.input_shape, splits.input_dtype, splits.n_classes) == ((3,), "float32", 4)
    assert (splits.input_name, splits.scale, splits.train_examples) == ("sensors", 2.0, 500)
    assert splits.validation is None and len(splits.x_valid) == 0 and len(splits.x_holdout) == 40
    summary = splits.summary()
    assert summary["train"] == 500 and summary["holdout"] == 40 and summary["input_shape"] == [3]
    assert summary["streamed"]["train"] == "mydata.load's train factory (make_train)"


def test_float64_holdout_and_validation_arrays_are_cast_and_the_stream_is_told_to():
    x = X.astype("float64")
    splits, notes = to_splits(
        {"train": make_train, "validation": (x[:10], Y[:10]), "holdout": (x, Y), "n_classes": 4},
        "mydata.load",
        NODE,
        seed=1,
    )
    assert splits.x_holdout.dtype == np.float32 and splits.x_valid.dtype == np.float32
    assert splits.input_dtype == "float32" and "input cast from float64 to float32" in notes[0]


def test_limit_takes_the_first_examples_of_the_stream_and_a_fifth_of_the_holdout():
    splits, _ = to_splits(streamed(train_examples=500), "mydata.load", {**NODE, "limit": 50}, seed=1)
    assert (splits.limit, splits.train_examples, len(splits.x_holdout)) == (50, 50, 10)


def test_a_validation_factory():
    def make_validation(input_context):
        return input_context

    splits, _ = to_splits(streamed(validation=make_validation), "mydata.load", NODE, seed=1)
    assert splits.validation == Factory(make_validation, "validation", "mydata.load", takes_context=True)
    assert splits.summary()["validation"] is None  # streamed: not counted


def test_the_training_arrays_are_not_there_and_say_so():
    splits, _ = to_splits(streamed(), "mydata.load", NODE, seed=1)
    with pytest.raises(
        UserCodeError,
        match=r"needs the training examples in memory, but mydata\.load returns train "
        r"as a tf\.data\.Dataset factory",
    ):
        _ = splits.x_train


class Reader:
    def __call__(self, input_context):
        return input_context


def takes_ctx(input_context=None):
    return input_context


def two_files(pattern, input_context):
    return pattern, input_context


@pytest.mark.parametrize(
    "factory, expected",
    [
        pytest.param(lambda: None, False, id="no-argument"),
        pytest.param(lambda ctx: ctx, True, id="one-positional"),
        pytest.param(takes_ctx, True, id="optional-input_context"),
        pytest.param(lambda folder="data": folder, False, id="optional-other"),
        pytest.param(Reader(), True, id="callable-object"),
        pytest.param(functools.partial(two_files, "*.tfrecord"), True, id="partial"),
        pytest.param(len, True, id="builtin-taking-one-argument"),
    ],
)
def test_whether_a_factory_gets_the_input_context(factory, expected: bool):
    assert takes_context(factory, "train", "mydata.load") is expected


@pytest.mark.parametrize("factory", [lambda a, b: None, lambda *, input_context: None])
def test_a_factory_that_cannot_be_called_with_a_context_or_nothing(factory):
    with pytest.raises(
        UserCodeError,
        match=r"mydata\.load returned train=.*taking \(.*\); a train factory takes no "
        r"argument, or one: input_context",
    ):
        takes_context(factory, "train", "mydata.load")


def test_a_factory_is_named_by_the_loader_and_its_own_name():
    def make():
        return None

    assert Factory(make, "train", "pkg.load", False).name == (
        "pkg.load's train factory (test_a_factory_is_named_by_the_loader_and_its_own_name.<locals>.make)"
    )
    assert Factory(functools.partial(two_files, "x"), "validation", "pkg.load", True).name == (
        "pkg.load's validation factory (partial two_files)"
    )


@pytest.mark.parametrize(
    "result, words",
    [
        pytest.param(
            {"train": make_train, "n_classes": 4},
            ["train factory without a holdout", "return holdout=(x, y) arrays too", "parity check"],
            id="no-holdout",
        ),
        pytest.param(
            streamed(holdout=make_train),
            ["returned holdout as a function", "held in memory as numpy arrays"],
            id="holdout-factory",
        ),
        pytest.param(streamed(holdout=FakeDataset()), ["returned holdout as a tf.data.Dataset"], id="holdout-dataset"),
        pytest.param(
            streamed(train=FakeDataset()),
            ["returned train as a tf.data.Dataset; return the function that makes it", "not `make_dataset()`"],
            id="train-dataset-not-factory",
        ),
        pytest.param(
            {"train": (X, Y), "validation": make_train, "holdout": (X, Y)},
            ["validation as a factory but train as arrays"],
            id="validation-factory-with-train-arrays",
        ),
        pytest.param(
            {"x": make_train, "y": Y},
            ["returned x as a function", "only train (and validation) can stream"],
            id="x-factory",
        ),
        pytest.param(
            {"x": X, "y": Y, "train_examples": 40},
            ["returned train_examples with arrays", "go with a train factory"],
            id="stream-keys-with-arrays",
        ),
        pytest.param(streamed(x=X, y=Y), ["both x/y and a train factory"], id="x-and-factory"),
        pytest.param(
            {"train": make_train, "holdout": (X, Y)},
            ["without n_classes", "cannot see every training label"],
            id="no-n_classes",
        ),
        pytest.param(streamed(n_classes=1), ["n_classes=1", "an integer >= 2"], id="one-class"),
        pytest.param(streamed(train_examples=0), ["train_examples=0", "an integer >= 1"], id="no-examples"),
        pytest.param(streamed(train_examples=True), ["train_examples=True"], id="examples-not-a-number"),
        pytest.param(
            streamed(input_shape=[4]),
            ["input_shape=[4], but its holdout examples have shape [3]"],
            id="input_shape-not-the-holdouts",
        ),
        pytest.param(
            streamed(input_dtype="uint8"),
            ["input_dtype='uint8', but its holdout is float32"],
            id="input_dtype-not-the-holdouts",
        ),
        pytest.param(streamed(n_classes=3), ["labels out of range in holdout", "[3]", "[0, 3)"], id="holdout-labels"),
        pytest.param(streamed(holdout=(X[:0], Y[:0])), ["returned no holdout examples"], id="empty-holdout"),
        pytest.param(
            streamed(validation=(X[:5, :2], Y[:5])),
            ["validation examples of shape [2], but holdout examples of shape [3]"],
            id="validation-shape",
        ),
        pytest.param(streamed(holdout=(X.astype("complex64"), Y)), ["dtype", "complex64"], id="holdout-dtype"),
        pytest.param(streamed(train=lambda a, b: None), ["taking (a, b)"], id="factory-arguments"),
    ],
)
def test_a_bad_factory_form_fails_naming_the_loader_and_the_problem(result: dict, words: list[str]):
    with pytest.raises(UserCodeError) as info:
        to_splits(result, "mydata.load", NODE, seed=1)
    for word in words:
        assert word in str(info.value), str(info.value)
    assert "mydata.load" in str(info.value)


def test_tensorflows_error_lines_are_reduced_to_what_says_why():
    assertion = RuntimeError(
        "Graph execution error:\n\nDetected at node Assert/AssertGuard/Assert defined at (most "
        "recent call last):\n<stack traces unavailable>\nError in user-defined function passed to "
        "MapDataset:3 transformation with iterator: Iterator::Root::Prefetch::BatchV2: assertion "
        "failed: [my.load\\'s train factory (f) yields a label out of range [0, 10) "
        "(n_classes=10):] [12]\n\t [[{{node Assert/AssertGuard/Assert}}]]"
    )
    assert (
        _first_line(assertion) == "my.load's train factory (f) yields a label out of range [0, 10) (n_classes=10): 12"
    )
    reader = RuntimeError(
        "Graph execution error:\n\nError in user-defined function passed to MapDataset:1 "
        "transformation with iterator: Iterator::Root::Map: Feature: y (data type: int64) is "
        "required but could not be found.\n\t [[{{node ParseSingleExample}}]]"
    )
    assert _first_line(reader) == "Feature: y (data type: int64) is required but could not be found."


def test_checking_a_factory_form_imports_no_tensorflow():
    code = (
        "import sys\nfrom tfrun.tasks.data.user_arrays import to_splits\nimport numpy as np\n"
        "splits, _ = to_splits({'train': lambda: None, 'holdout': (np.zeros((4, 2), 'float32'), np.arange(4) % 2),"
        " 'n_classes': 2}, 'my.load', {'limit': None}, seed=1)\n"
        "print(type(splits).__name__, 'tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["StreamedSplits", "False"]
