"""A loader returning a tf.data.Dataset factory, through the real `tfrun`, under every strategy tfrun supports; and
the mistakes only TensorFlow can see, each a failed record naming the user's function (tests/e2e/stream_project.py
is the user's project). The default strategy, TFRecord files and int8 TFLite: tests/e2e/test_example_streaming.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.stream_project import CONFIGS, USER_CODE
from tests.helpers import read_record, run_failing_on_user_code, tfrun, write_user_project

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

QUICK = ["--config-dir", "my_conf", "train.epochs=3", "train.verbose=2", "train.callbacks.tensorboard=false"]
CLUSTER = ["cluster=local", "cluster.workers=2"]
PS = ["strategy=parameter_server", *CLUSTER, "cluster.ps=1"]
# the smallest parameter-server cluster (chief, one worker, one ps): for a run that fails at its data step
PS_SMALL = ["strategy=parameter_server", "cluster=local", "cluster.workers=1", "cluster.ps=1"]


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_user_project(tmp_path_factory.mktemp("streams"), {"usercode_stream.py": USER_CODE}, CONFIGS)


def step(record: dict, name: str) -> dict:
    return next(s["result"] for s in record["steps"] if s["name"] == name)


# name: overrides, replicas, what the output shows about how the stream was read
STRATEGIES = {
    "default_generator": (["data=generated"], 1, []),
    "mirrored_validation_factory": (
        ["data=records", "+data.validation=true", "strategy=mirrored", "hardware.logical_devices=2"],
        2,
        [],
    ),
    "central_storage": (["data=records", "strategy=central_storage", "hardware.logical_devices=2"], 2, []),
    # 4 shards over 2 workers, by file: each worker reads ~719 examples, 45 steps of 16 (not 90)
    "multi_worker": (["data=records", "strategy=multi_worker", *CLUSTER], 2, ["[worker:1] 45/45 - "]),
    "multi_worker_own_shards": (
        ["data=own_shards", "strategy=multi_worker", *CLUSTER],
        2,
        [
            "[worker:1] input pipeline 1 of 2: 2 file(s)",
            "[worker:0] input pipeline 0 of 2: 2 file(s)",
            "[worker:0] 45/45 - ",
        ],
    ),
    "parameter_server": (["data=records", *PS], 1, ["[chief:0] 45/45 - "]),
}


@pytest.mark.parametrize("name", list(STRATEGIES))
def test_a_dataset_factory_trains_under_every_strategy(project: Path, name: str):
    overrides, replicas, shown = STRATEGIES[name]
    proc = tfrun(*QUICK, *overrides, f"hydra.run.dir=runs/{name}", cwd=project, timeout=480)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output
    record = read_record(project / "runs" / name)
    assert record["status"] == "succeeded"
    data = step(record, "data")
    assert "streamed train" in data["summary"] and data["streamed"]["train"].startswith("usercode_stream.")
    assert data["first_examples_checked"]["train"] == 256
    assert step(record, "strategy")["replicas"] == replicas
    assert record["metrics"]["final"]["holdout_accuracy"] >= 0.8, record["metrics"]["final"]
    for line in shown:
        assert line in output, output
    if "45/45" in "".join(shown):
        assert "90/90" not in output  # no worker read every example
    if name == "mirrored_validation_factory":
        assert data["streamed"]["validation"] and "val_accuracy" in record["metrics"]["final"]
    if name in ("multi_worker_own_shards", "parameter_server"):  # repeated streams: steps from train_examples
        assert data["streamed"]["steps_per_epoch"] == 45  # ceil(1437 / 32)


FAILURES = [
    pytest.param(
        ["data=raising"],
        "data",
        [
            "usercode_stream.raising's train factory (raising.<locals>.make_dataset) "
            "raised FileNotFoundError: no file matches gs://bucket/missing-*.tfrecord"
        ],
        id="factory-raises",
    ),
    pytest.param(
        ["data=not_a_dataset"],
        "data",
        [
            "usercode_stream.not_a_dataset's train factory (not_a_dataset."
            "<locals>.<lambda>) returned a builtins.tuple, not a tf.data.Dataset"
        ],
        id="not-a-dataset",
    ),
    pytest.param(
        ["data=batched"],
        "data",
        [
            "usercode_stream.batched's train factory (batched.<locals>.<lambda>) returned a batched dataset",
            "no .batch()",
        ],
        id="batched",
    ),
    pytest.param(
        ["data=wrong_shape"],
        "data",
        [
            "usercode_stream.wrong_shape's train factory (wrong_shape.<locals>."
            "<lambda>) returned examples of shape [64]",
            "have shape [8, 8]",
        ],
        id="element-shape",
    ),
    pytest.param(
        ["data=wrong_dtype"],
        "data",
        [
            "usercode_stream.wrong_dtype's train factory (wrong_dtype.<locals>."
            "<lambda>) returned examples of dtype uint8",
            "holdout is float32",
        ],
        id="element-dtype",
    ),
    pytest.param(
        ["data=labels_out_of_range"],
        "data",
        [
            "usercode_stream.labels_out_of_range's train factory "
            "(labels_out_of_range.<locals>.<lambda>) yields a label out of "
            "range",
            "[0, 10) with n_classes=10",
        ],
        id="labels-out-of-range",
    ),
    pytest.param(
        ["data=late_label_out_of_range"],
        "train",
        [
            "training stopped: usercode_stream.late_label_out_of_range"
            "'s train factory (late_label_out_of_range.<locals>."
            "<lambda>) yields a label out of range [0, 10) "
            "(n_classes=10): 12"
        ],
        id="late-label-out-of-range",
    ),
    pytest.param(
        ["data=repeated"],
        "data",
        [
            "usercode_stream.repeated's train factory (repeated.<locals>.<lambda>) "
            "returned an endless dataset (a .repeat()?)"
        ],
        id="endless",
    ),
    pytest.param(
        ["data=no_holdout"],
        "data",
        ["usercode_stream.no_holdout returned a train factory without a holdout"],
        id="no-holdout",
    ),
    pytest.param(
        ["data=uncounted", *PS_SMALL],
        "data",
        [
            "usercode_stream.records returns a train factory of unknown size; under strategy=parameter_server",
            "return train_examples",
            "or set strategy.steps_per_epoch",
        ],
        id="parameter-server-without-train-examples",
    ),
]


@pytest.mark.parametrize("overrides, step_name, words", FAILURES)
def test_a_bad_factory_fails_the_run_naming_the_users_function(
    project: Path, overrides: list[str], step_name: str, words: list[str]
):
    output = run_failing_on_user_code(
        project,
        overrides,
        f"runs/failed-{abs(hash(tuple(overrides)))}",
        step_name,
        words,
        ("runner/child.py", "tasks/data/user_streams.py", "tasks/data/splits.py", "tasks/train.py"),
        timeout=300,
    )
    if "raising" in overrides[0]:  # the user's frames are shown
        assert 'usercode_stream.py", line' in output and "in _open_shards" in output
