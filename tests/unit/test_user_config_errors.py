"""Bad configs of a user's own model, data and callbacks exit 2 before anything runs, through the real
`tfrun`: key, value and what is allowed, every problem at once, and the user's modules never imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import assert_rejected, tfrun, write_user_project

MODULES = {
    # each module would leave a mark, and import TensorFlow, if the check imported it
    "mymodels.py": """
        open("IMPORTED", "w").write("mymodels")
        import tensorflow

        def build(*, input_shape, n_classes, units=32):
            ...

        def needs_depth(*, input_shape, n_classes, depth, units=8):
            ...
        """,
    "mydata.py": """
        open("IMPORTED", "w").write("mydata")

        def load(*, seed, size=100):
            ...
        """,
    "mycallbacks.py": """
        open("IMPORTED", "w").write("mycallbacks")
        import tf_keras as keras

        class Stop(keras.callbacks.Callback):
            def __init__(self, threshold):
                super().__init__()
        """,
}
CONFIGS = {
    "model/tiny.yaml": "_target_: mymodels.build\nunits: 16\n",
    "model/needs.yaml": "_target_: mymodels.needs_depth\n",
    "model/nomodule.yaml": "_target_: nosuchmodels.build\n",
    "model/nofunc.yaml": "_target_: mymodels.biuld\n",
    "model/notarget.yaml": "units: 3\n",
    "data/mine.yaml": "_target_: mydata.load\nsize: 50\n",
}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write_user_project(tmp_path, MODULES, CONFIGS)


BAD = [
    pytest.param(
        ["model=nomodule"],
        [
            "model._target_='nosuchmodels.build' is not allowed",
            "no module 'nosuchmodels' is on the path",
            "(did you mean mymodels?)",
        ],
        id="missing-module",
    ),
    pytest.param(
        ["model=nofunc"],
        ["model._target_='mymodels.biuld'", "mymodels.py, which has no 'biuld'", "did you mean build"],
        id="missing-function",
    ),
    pytest.param(
        ["model=tiny", "+model.unitz=3"],
        [
            "model.unitz=3 is not allowed",
            "a parameter of mymodels.build (mymodels.py:5): units",
            "(did you mean units?)",
        ],
        id="unknown-parameter",
    ),
    pytest.param(
        ["model=needs"],
        ["model.depth='???' is not allowed", "mymodels.needs_depth (mymodels.py:8) requires 'depth'"],
        id="missing-required-parameter",
    ),
    pytest.param(
        ["model=tiny", "+model.n_classes=3"],
        ["model.n_classes=3", "tfrun passes n_classes to mymodels.build from the data"],
        id="key-tfrun-supplies",
    ),
    pytest.param(["model=notarget"], ["model._target_=None", "the dotted path of your function"], id="no-target"),
    pytest.param(["model=tiny", "model._target_=build"], ["model._target_='build'", "names no module"], id="bare-name"),
    pytest.param(
        ["data=mine", "+data.sise=1"],
        ["data.sise=1", "a parameter of mydata.load (mydata.py:4): size", "did you mean size?"],
        id="data-unknown-parameter",
    ),
    pytest.param(
        ["data=mine", "+data.seed=1"],
        ["data.seed=1", "tfrun passes seed to mydata.load from train.seed"],
        id="data-seed-is-tfruns",
    ),
    pytest.param(
        ["data=mine", "+data.holdout_fraction=1.5"],
        ["data.holdout_fraction=1.5", "(0.0, 1.0)"],
        id="data-split-out-of-range",
    ),
    pytest.param(
        ["train.extra_callbacks=[{_target_: mycallbacks.Stopp, threshold: 1}]"],
        ["train.extra_callbacks[0]._target_='mycallbacks.Stopp'", "did you mean Stop?"],
        id="callback-missing-class",
    ),
    pytest.param(
        ["train.extra_callbacks=[{_target_: mycallbacks.Stop}]"],
        ["train.extra_callbacks[0].threshold='???'", "requires 'threshold'"],
        id="callback-missing-parameter",
    ),
    pytest.param(
        ["train.extra_callbacks=[{_target_: tf_keras.callbacks.CSVLogger, file: x.csv}]"],
        [
            "train.extra_callbacks[0].file='x.csv'",
            "filename, separator, append",
            "train.extra_callbacks[0].filename='???'",
        ],
        id="library-callback-wrong-parameter",
    ),
    pytest.param(
        ["train.extra_callbacks=[3]"],
        ["train.extra_callbacks[0]=3", "a node with a _target_"],
        id="callback-not-a-node",
    ),
    pytest.param(
        ["model._target_=nomodule_xyz.build"],
        ["model._target_='nomodule_xyz.build' is not allowed", "no module 'nomodule_xyz' is on the path"],
        id="tfrun-model-retargeted-to-missing-module",
    ),
    pytest.param(
        ["model._target_=mymodel.build"],
        ["model._target_='mymodel.build'", "(did you mean mymodels?)"],
        id="tfrun-model-retargeted-typo",
    ),
    pytest.param(
        ["data._target_=mydata.lode"],
        ["data._target_='mydata.lode'", "mydata.py, which has no 'lode'", "did you mean load"],
        id="tfrun-data-retargeted-missing-function",
    ),
    pytest.param(
        ["model=nofunc", "data=mine", "+data.sise=1", "train.epochs=0"],
        ["model._target_='mymodels.biuld'", "data.sise=1", "train.epochs=0"],
        id="all-at-once",
    ),
]


@pytest.mark.parametrize("overrides, words", BAD)
def test_a_bad_user_extension_exits_2_naming_key_value_and_allowed(
    project: Path, overrides: list[str], words: list[str]
):
    proc = tfrun("--config-dir", "my_conf", *overrides, "hydra.run.dir=runs/bad", cwd=project, timeout=60)
    message = assert_rejected(proc, words, project / "runs" / "bad")
    assert message.startswith("tfrun: invalid configuration (nothing was run):"), message
    assert not (project / "IMPORTED").exists(), "the check imported the user's module"


def test_good_user_nodes_pass_the_check(project: Path):
    """The only problem reported is the deliberate one: the model, data and callbacks themselves are fine."""
    proc = tfrun(
        "--config-dir",
        "my_conf",
        "model=tiny",
        "data=mine",
        "data.size=20",
        "train.epochs=0",
        "train.extra_callbacks=[{_target_: mycallbacks.Stop, threshold: 0.9}, "
        "{_target_: tf_keras.callbacks.CSVLogger, filename: epochs.csv}]",
        "hydra.run.dir=runs/x",
        cwd=project,
        timeout=60,
    )
    message = proc.stdout + proc.stderr
    assert proc.returncode == 2, message
    problems = [line for line in message.splitlines() if line.startswith("  - ")]
    assert problems == ["  - train.epochs=0 is not allowed: expected a number >= 1"], message
    assert not (project / "IMPORTED").exists()


@pytest.mark.parametrize(
    "args, code",
    [
        (["--config-dir", "my_conf", "model=tiny", "data=mine", "--cfg", "job"], 0),
        (
            [
                "--config-dir",
                "my_conf",
                "model=tiny",
                "+model.unitz=3",
                "train.extra_callbacks=[{_target_: mycallbacks.Stop, threshold: 0.9}]",
            ],
            2,
        ),
    ],
)
def test_checking_user_code_imports_no_tensorflow(project: Path, args: list[str], code: int):
    """In-process, so the modules the check loaded can be listed: neither TensorFlow nor the user's modules."""
    import subprocess
    import sys

    from tests.helpers import PROBE, command_env

    probe = (
        PROBE.format(args=args) + "print('USER=' + ','.join(m for m in ('mymodels', 'mydata', 'mycallbacks') "
        "if m in sys.modules))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=project, env=command_env(), capture_output=True, text=True, timeout=60
    )
    assert f"CODE={code}" in proc.stdout, proc.stdout + proc.stderr
    assert "HEAVY=\n" in proc.stdout and "USER=\n" in proc.stdout, proc.stdout
