"""What only TensorFlow can tell about a user's model, data or callback, through the real `tfrun`: the run fails,
its record's error names the user's function and the problem, and no traceback of tfrun's own code is shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import read_record, run_failing_on_user_code, tfrun, write_user_project

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

USER_CODE = """
import tf_keras as keras


def none_builder(*, n_classes):
    keras.Sequential([keras.layers.Dense(n_classes, activation="softmax")])


def keras3_builder(*, input_shape, n_classes):
    import keras as keras3

    return keras3.Sequential([keras3.Input(shape=input_shape), keras3.layers.Flatten(),
                              keras3.layers.Dense(n_classes, activation="softmax")])


def logits_builder(*, input_shape, n_classes):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(), keras.layers.Dense(n_classes)])


def three_classes(*, input_shape):
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             keras.layers.Dense(3, activation="softmax")])


def wrong_input(*, n_classes):
    return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(n_classes, activation="softmax")])


def raising_builder(*, n_classes):
    return _layers(n_classes)


def _layers(n):
    raise ValueError(f"no architecture for {n} classes")


def compiled_builder(*, input_shape, n_classes, learning_rate=0.05):
    model = keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(n_classes, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def labels_out_of_range(*, seed):
    from sklearn.datasets import load_digits

    digits = load_digits()
    return {"x": digits.images.astype("float32"), "y": digits.target, "n_classes": 5}


def raising_loader(*, path="data/missing.csv"):
    return open(path).read()


class NotACallback:
    def __init__(self, every=1):
        self.every = every
"""
CONFIGS = {
    "model/none.yaml": "_target_: usercode.none_builder\n",
    "model/keras3.yaml": "_target_: usercode.keras3_builder\n",
    "model/logits.yaml": "_target_: usercode.logits_builder\n",
    "model/three.yaml": "_target_: usercode.three_classes\n",
    "model/wrong_input.yaml": "_target_: usercode.wrong_input\n",
    "model/raising.yaml": "_target_: usercode.raising_builder\n",
    "model/compiled.yaml": "_target_: usercode.compiled_builder\n",
    "model/broken_import.yaml": "_target_: broken_import.build\n",
    "data/out_of_range.yaml": "_target_: usercode.labels_out_of_range\n",
    "data/raising.yaml": "_target_: usercode.raising_loader\n",
}


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_user_project(
        tmp_path_factory.mktemp("usercode"),
        {
            "usercode.py": USER_CODE,
            "broken_import.py": "import a_library_nobody_installed\n\ndef build(*, n_classes): ...\n",
        },
        CONFIGS,
    )


FAILURES = [
    pytest.param(
        ["model=none"],
        "model",
        ["usercode.none_builder returned None, not a tf-keras model", "a missing `return model`?"],
        id="builder-returns-none",
    ),
    pytest.param(
        ["model=keras3"],
        "model",
        ["usercode.keras3_builder returned a keras", "it is a Keras 3 model", "import tf_keras as keras"],
        id="builder-returns-keras3",
    ),
    pytest.param(
        ["model=logits"],
        "model",
        ["the model usercode.logits_builder built does not output probabilities", "softmax"],
        id="builder-outputs-logits",
    ),
    pytest.param(
        ["model=three"],
        "model",
        ["the model usercode.three_classes built outputs shape [None, 3]", "[None, 10] (n_classes=10)"],
        id="builder-wrong-class-count",
    ),
    pytest.param(
        ["model=wrong_input"],
        "model",
        ["the model usercode.wrong_input built cannot take the data's input", "pixels: float32 [None, 8, 8]"],
        id="builder-wrong-input",
    ),
    pytest.param(
        ["model=raising"],
        "model",
        ["usercode.raising_builder raised ValueError: no architecture for 10 classes"],
        id="builder-raises",
    ),
    pytest.param(
        ["model=broken_import"],
        "model",
        [
            "model._target_=broken_import.build: importing broken_import failed: ModuleNotFoundError",
            "a_library_nobody_installed",
        ],
        id="module-import-fails",
    ),
    pytest.param(
        ["data=out_of_range"],
        "data",
        [
            "usercode.labels_out_of_range returned labels out of range in train",
            "[5, 6, 7, 8, 9]",
            "integers in [0, 5) with n_classes=5",
        ],
        id="labels-out-of-range",
    ),
    pytest.param(
        ["data=raising"],
        "data",
        ["usercode.raising_loader raised FileNotFoundError", "data/missing.csv"],
        id="loader-raises",
    ),
    pytest.param(
        ["train.extra_callbacks=[{_target_: usercode.NotACallback, every: 2}]"],
        "train",
        [
            "train.extra_callbacks[0]: usercode.NotACallback returned a usercode.NotACallback, not a "
            "tf_keras.callbacks.Callback"
        ],
        id="callback-not-a-callback",
    ),
]


@pytest.mark.parametrize("overrides, step, words", FAILURES)
def test_a_failure_only_tensorflow_can_tell_names_the_users_function(
    project: Path, overrides: list[str], step: str, words: list[str]
):
    run_failing_on_user_code(
        project,
        overrides,
        f"runs/{abs(hash(tuple(overrides)))}",
        step,
        words,
        ("runner/child.py", "tasks/user_calls.py", "tasks/model.py", "tasks/data/splits.py", "tasks/train.py"),
        timeout=240,
    )


def test_a_builder_that_raises_shows_the_users_frames(project: Path):
    proc = tfrun("--config-dir", "my_conf", "model=raising", "hydra.run.dir=runs/frames", cwd=project, timeout=240)
    assert 'usercode.py", line' in proc.stdout + proc.stderr and "in _layers" in proc.stdout + proc.stderr
    assert "in _layers" in read_record(project / "runs/frames")["error"].get("traceback", "")


def test_a_builder_that_compiles_keeps_its_compile(project: Path):
    proc = tfrun(
        "--config-dir",
        "my_conf",
        "model=compiled",
        "train.epochs=2",
        "train.optimizer=adam",
        "hydra.run.dir=runs/compiled",
        cwd=project,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    record = read_record(project / "runs/compiled")
    train = next(s for s in record["steps"] if s["name"] == "train")
    assert train["result"]["compiled_by"] == "builder"
    assert record["config"]["model"]["name"] == "compiled"  # the option's name, as model_name's default needs
    assert record["artifacts"][0]["path"] == "models/digits_compiled/0001"
