"""`+key=value` with a key the schema does not know is a config error (exit 2, key, value, the keys
allowed and the close matches), except inside free-form maps and Hydra's own `hydra.*`."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import assert_rejected, tfrun
from tfrun.runner.config import unknown_keys
from tfrun.runner.config.validate import validate

# (overrides, words the message must contain)
UNKNOWN = [
    pytest.param(
        ["+train.epoch=5"],
        [
            "train.epoch=5 is not allowed",
            "expected a key of train:",
            "epochs, batch_size",
            "(did you mean train.epochs?)",
        ],
        id="typo-in-train",
    ),
    pytest.param(
        ["+train.callbacks.early_stopping.patiense=2"],
        ["train.callbacks.early_stopping.patiense=2", "did you mean train.callbacks.early_stopping.patience?"],
        id="typo-nested",
    ),
    pytest.param(
        ["+model.n_hiden=3"],
        ["model.n_hiden=3", "n_hidden, n_neurons", "did you mean model.n_hidden?"],
        id="typo-in-a-group-option",
    ),
    pytest.param(
        ["model=cnn", "+model.n_hidden=3"],
        ["model.n_hidden=3", "expected a key of model:", "filters"],
        id="key-of-another-option",
    ),
    pytest.param(["+data.labels={a: b}"], ["data.labels=", "expected a key of data:"], id="new-node"),
    pytest.param(
        ["+epochs=5"], ["epochs=5 is not allowed: expected a top-level key:", "train, hardware"], id="top-level"
    ),
    pytest.param(
        ["+hardware.gpu_count=2", "+run.retries=1"],
        ["hardware.gpu_count=2", "run.retries=1"],
        id="all-reported-at-once",
    ),
]


@pytest.mark.parametrize("overrides, words", UNKNOWN)
def test_an_unknown_added_key_exits_2_naming_it_and_what_is_allowed(
    workdir: Path, overrides: list[str], words: list[str]
):
    proc = tfrun(*overrides, "hydra.run.dir=runs/bad", cwd=workdir, timeout=60)
    assert_rejected(proc, words, workdir / "runs" / "bad")


@pytest.mark.parametrize(
    "addition", ["+cluster.task_env.worker_1.CUDA_VISIBLE_DEVICES='1'", "+hydra.job.env_set.MY_FLAG=1"]
)
def test_additions_to_free_form_maps_and_hydra_pass_the_check(workdir: Path, addition: str):
    """Through the real CLI: the only problem reported is the deliberate one, not the addition."""
    proc = tfrun("cluster=local", addition, "train.epochs=0", "hydra.run.dir=runs/x", cwd=workdir, timeout=60)
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    assert "train.epochs=0 is not allowed" in message
    assert "task_env" not in message and "env_set" not in message and "MY_FLAG" not in message


def test_a_free_form_map_takes_any_key(compose_cfg):
    cfg = compose_cfg(
        "strategy=multi_worker",
        "cluster=local",
        "+cluster.task_env.worker_1.CUDA_VISIBLE_DEVICES='1'",
        "+cluster.task_env.chief_0={A: b}",
    )
    config = validate(cfg)
    assert config.cluster.task_env == {"worker_1": {"CUDA_VISIBLE_DEVICES": "1"}, "chief_0": {"A": "b"}}


def test_hydras_own_node_is_not_checked(compose_cfg):
    from hydra import compose, initialize_config_dir

    from tests.helpers import ROOT

    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["+hydra.job.env_set.MY_FLAG=1"], return_hydra_config=True)
    assert "hydra" in cfg and list(unknown_keys.problems(cfg)) == []


def test_the_default_config_and_every_group_option_have_no_unknown_keys(compose_cfg):
    for overrides in (
        [],
        ["model=cnn"],
        ["data=files", "data.path=x.csv"],
        ["hardware=split_gpu"],
        ["strategy=parameter_server", "cluster=local"],
        ["target=tflite"],
        ["target=tfserving"],
        ["sweep=optuna"],
    ):
        assert list(unknown_keys.problems(compose_cfg(*overrides))) == [], overrides
