"""What only TensorFlow can tell about a user's dataset factory (tfrun.tasks.data.user_streams), in-process on the CPU: the checks
the data step makes, the steps per epoch, the pipelines fed to model.fit, int8 calibration examples, read errors."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import LazyModule, requires
from tfrun.tasks.data.user_arrays import to_splits
from tfrun.tasks.user_calls import UserCodeError

pytestmark = [pytest.mark.slow, requires("tensorflow")]

tf = LazyModule("tensorflow")


RNG = np.random.default_rng(0)
X = RNG.normal(size=(300, 4, 2)).astype("float32")
Y = np.arange(300) % 3
NODE = {"_target_": "mydata.load", "limit": None}


def slices(x=X, y=Y):
    return tf.data.Dataset.from_tensor_slices((x, y))


def splits_of(train, limit=None, **extra):
    result = {"train": train, "holdout": (X[:30], Y[:30]), "n_classes": 3, **extra}
    return to_splits(result, "mydata.load", {**NODE, "limit": limit}, seed=1)[0]


def check(train, strategy=None, global_batch=32, steps=None, **extra):
    from tfrun.tasks.data.user_streams import check as check_data

    data = splits_of(train, **extra)
    return data, check_data(data, strategy or tf.distribute.get_strategy(), global_batch, steps)


def _open(pattern):
    raise FileNotFoundError(f"no file matches {pattern}")


def make_missing():
    return _open("gs://bucket/*.tfrecord")


def endless_generator():
    for i in range(300):
        if i == 3:
            raise OSError("disk read failed at example 3")
        yield X[i], Y[i]


def _spec() -> tuple:
    return tf.TensorSpec([4, 2], tf.float32), tf.TensorSpec([], tf.int64)


BAD = [
    pytest.param(
        make_missing,
        ["mydata.load's train factory (make_missing) raised FileNotFoundError: no file matches"],
        id="factory-raises",
    ),
    pytest.param(lambda: None, ["returned None (a missing `return`?), not a tf.data.Dataset"], id="returns-none"),
    pytest.param(lambda: (X, Y), ["returned a builtins.tuple, not a tf.data.Dataset"], id="returns-arrays"),
    pytest.param(
        lambda: slices().batch(16),
        ["returned a batched dataset (examples of shape [None, 4, 2], the holdout's are [4, 2])", "no .batch()"],
        id="batched",
    ),
    pytest.param(
        lambda: slices(X.reshape(300, 8)),
        ["examples of shape [8], but mydata.load's holdout examples have shape [4, 2]"],
        id="wrong-shape",
    ),
    pytest.param(
        lambda: slices(X.astype("float16")),
        ["examples of dtype float16, but mydata.load's holdout is float32"],
        id="wrong-dtype",
    ),
    pytest.param(
        lambda: slices(y=Y.astype("float32")),
        ["labels of dtype float32 and shape []", "integer class id"],
        id="float-labels",
    ),
    pytest.param(
        lambda: slices(y=np.eye(3, dtype="int64")[Y]),
        ["labels of dtype int64 and shape [3]", "one-hot"],
        id="one-hot-labels",
    ),
    pytest.param(
        lambda: tf.data.Dataset.from_tensor_slices({"x": X, "y": Y}),
        ["elements are {", "(x, y) pairs"],
        id="dict-elements",
    ),
    pytest.param(lambda: slices().repeat(), ["an endless dataset (a .repeat()?)"], id="endless"),
    pytest.param(lambda: slices().take(0), ["returned an empty dataset"], id="empty"),
    pytest.param(
        lambda: slices(y=Y + 1),
        ["yields a label out of range: 3 (example 2)", "[0, 3) with n_classes=3"],
        id="labels-out-of-range",
    ),
    pytest.param(
        lambda: tf.data.Dataset.from_generator(endless_generator, output_signature=_spec()),
        ["reading the first examples of mydata.load's train factory", "disk read failed at example 3"],
        id="reader-fails",
    ),
]


@pytest.mark.parametrize("train, words", BAD)
def test_a_bad_dataset_fails_the_data_step_naming_the_users_function(train, words: list[str]):
    with pytest.raises(UserCodeError) as info:
        check(train)
    for word in words:
        assert word in str(info.value), str(info.value)


def test_a_factory_that_raises_shows_the_users_frames():
    with pytest.raises(UserCodeError) as info:
        check(make_missing)
    report = info.value.report()
    assert "in make_missing" in report and "in _open" in report and "tasks/data/user_streams.py" not in report


def test_a_validation_factory_is_checked_too():
    with pytest.raises(UserCodeError, match=r"mydata\.load.s validation factory \(.*<lambda>\) returned a batched"):
        check(slices, validation=lambda: slices().batch(4))


def test_a_good_stream_is_checked_on_its_first_examples_and_needs_no_steps_on_one_device():
    data, result = check(slices, validation=lambda ctx: slices().take(40))
    assert result == {"first_examples_checked": {"train": 256, "validation": 40}}
    assert data.steps_per_epoch is None  # model.fit ends each epoch at the data's end


def test_loose_shapes_and_float64_are_pinned_and_cast_as_they_stream():
    from tfrun.tasks.data.user_streams import fit_inputs

    loose = (tf.TensorSpec([None, 2], tf.float64), tf.TensorSpec([1], tf.int32))

    def generator():
        for x, y in zip(X.astype("float64"), Y):
            yield x, np.int32([y])

    data, _ = check(lambda: tf.data.Dataset.from_generator(generator, output_signature=loose))
    cfg = _cfg()
    x, y = next(iter(fit_inputs(cfg, data, tf.distribute.get_strategy(), 32)["x"]))
    assert (x.shape, x.dtype, y.shape, y.dtype) == ((32, 4, 2), tf.float32, (32,), tf.int64)


def _cfg(seed=7, buffer=1000):
    from omegaconf import OmegaConf

    return OmegaConf.create({"train": {"seed": seed}, "data": {"shuffle_buffer": buffer}})


def test_the_training_pipeline_is_shuffled_by_the_seed_and_batched_by_the_global_batch():
    from tfrun.tasks.data.user_streams import fit_inputs

    data, _ = check(slices, limit=100)

    def labels(seed):
        inputs = fit_inputs(_cfg(seed), data, tf.distribute.get_strategy(), 32)
        assert "steps_per_epoch" not in inputs
        return [y.numpy().tolist() for _, y in inputs["x"]]

    first = labels(7)
    assert [len(b) for b in first] == [32, 32, 32, 4]  # data.limit=100: the first 100 examples, one pass
    assert first == labels(7) and first != labels(8)
    assert sorted(sum(first, [])) == sorted(Y[:100].tolist())


def test_steps_per_epoch_where_a_strategy_repeats_the_stream():
    from tfrun.tasks.data.user_streams import _steps

    def steps(train, given=None, **extra):
        return _steps(splits_of(train, **extra), 32, given, parameter_server=True)

    assert steps(slices) == 10  # a known cardinality: 300 examples
    assert steps(slices, limit=100) == 4
    unknown = lambda: slices().filter(lambda x, y: True)  # noqa: E731 - cardinality unknown
    assert steps(unknown, train_examples=64) == 2
    assert steps(unknown, given=5) == 5  # strategy.steps_per_epoch wins
    with pytest.raises(
        UserCodeError,
        match=r"mydata\.load returns a train factory of unknown size; under "
        r"strategy=parameter_server .* return train_examples .* or set "
        r"strategy.steps_per_epoch",
    ):
        steps(unknown)


def test_int8_calibration_examples_come_from_the_stream_seeded():
    from tfrun.tasks.data.user_streams import representative

    data, _ = check(slices)
    sample = representative(data, 100, seed=3, buffer=1000)
    assert sample.shape == (100, 4, 2) and sample.dtype == np.float32
    np.testing.assert_array_equal(sample, representative(data, 100, seed=3, buffer=1000))
    assert not np.array_equal(sample, X[:100])  # shuffled, not the first 100
    with pytest.raises(
        UserCodeError,
        match=r"target.representative_samples=400 is more than the 300 examples "
        r"mydata\.load's train factory \(slices\) yields",
    ):
        representative(data, 400, seed=3, buffer=1000)


def test_a_label_out_of_range_later_in_the_stream_stops_training_naming_the_factory():
    import tf_keras as keras

    from tfrun.tasks.data.user_streams import fit_inputs, reading

    y = Y.copy()
    y[290] = 7  # after the 256 examples the data step reads

    def late_bad_label():
        return slices(y=y)

    data, _ = check(late_bad_label)
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.Flatten(), keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    with pytest.raises(UserCodeError) as info:
        with reading(data):
            model.fit(verbose=0, **fit_inputs(_cfg(), data, tf.distribute.get_strategy(), 32))
    assert str(info.value) == (
        f"training stopped: mydata.load's train factory ({late_bad_label.__qualname__}) yields a "
        "label out of range [0, 3) (n_classes=3): 7"
    )


def test_reading_leaves_array_data_and_other_errors_alone():
    from tfrun.tasks.data.splits import Splits
    from tfrun.tasks.data.user_streams import reading

    arrays = Splits(X, Y, X[:0], Y[:0], X, Y, input_name="x", scale=1.0, n_classes=3)
    with pytest.raises(tf.errors.InvalidArgumentError):
        with reading(arrays):
            raise tf.errors.InvalidArgumentError(None, None, "not the user's stream")
    with pytest.raises(ValueError):
        with reading(splits_of(slices)):
            raise ValueError("not TensorFlow's")
