"""Shared helpers: run the real tfrun commands from the test environment."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import ROOT, TRAINED_RUN, command_env, tfrun

# Importing joblib, scikit-learn or threadpoolctl sets these in os.environ (setdefault), which tests do in their own
# process at any time. Set from the start, every process a test starts has them as the suite's zygote does: set
# later, each job started after that import would differ from the zygote in its start-up environment and import
# TensorFlow afresh (the jobs of the fake Vertex, the notebook kernel and `tfrun-records rerun` did).
IMPORT_SIDE_EFFECTS = {"KMP_DUPLICATE_LIB_OK": "True", "KMP_INIT_AT_FORK": "FALSE"}
for _name, _value in IMPORT_SIDE_EFFECTS.items():
    os.environ.setdefault(_name, _value)

pytest_plugins = [
    "tests.fakes.gcs",
    "tests.fakes.vertex.fixture",
    "tests.fakes.mlflow_server",
]  # fixtures of the cloud fakes (gcs_emulator, fake_vertex, ...)


MODULE_DURATIONS = Path(__file__).with_name("module_durations.json")  # bench/module_order.py writes it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slowest modules first (seconds from tests/module_durations.json; a module it does not list counts as the
    slowest, as a new one may be): under `--dist loadscope` a long module collected last would run on alone while the
    other workers have nothing left. Only the order changes, the same on every worker; each module keeps its own."""
    try:
        seconds = json.loads(MODULE_DURATIONS.read_text())
    except (OSError, ValueError):
        return
    items.sort(key=lambda item: -seconds.get(item.nodeid.partition("::")[0], float("inf")))


@pytest.fixture(scope="module")
def compose_cfg():
    """Compose tfrun's config in-process with Hydra's compose API (no subprocess, no TensorFlow)."""
    from hydra import compose, initialize_config_dir

    from tfrun.tasks.core import schema

    schema.register()

    def _compose(*overrides: str):
        with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
            return compose(config_name="config", overrides=list(overrides))

    return _compose


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    """An empty directory to launch tfrun from (runs/ and models/ land here)."""
    return tmp_path


@pytest.fixture(scope="session", autouse=True)
def _zygote():
    """One zygote (tfrun.runner.processes.zygote) per test process: every `tfrun` command a test starts forks its
    job from it instead of importing TensorFlow again (a test that must see a fresh process sets TFRUN_NO_FORK=1).
    tests/unit/conftest.py replaces this fixture: unit tests run no TensorFlow."""
    from tfrun.runner.processes import zygote

    if not zygote.enabled() or os.environ.get(zygote.ZYGOTE_ENV):
        yield None
        return
    # the Vertex tests' jobs each import the cloud SDK (~3.5 s of a core): imported once here instead
    started = zygote.start(base=command_env(TFRUN_ZYGOTE_PRELOAD="google.cloud.aiplatform"))
    os.environ[zygote.ZYGOTE_ENV] = started.path
    try:
        yield started
    finally:
        os.environ.pop(zygote.ZYGOTE_ENV, None)
        started.stop()


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One training run of the default digits mlp per test process (5 epochs: a model good enough for the targets'
    accuracy and parity checks), for the tests that deploy, serve or convert a trained model but do not test the
    training: they deploy it with `tfrun job=deploy source=runs/train ...`. Modules on one worker share it (under
    `--dist loadscope` each worker builds it once). Returned is its launch folder (runs/train,
    models/digits_mlp/0001): never write there; `copy_trained(trained_digits, workdir)` gives a test its own copy."""
    workdir = tmp_path_factory.mktemp("trained-digits")
    proc = tfrun(
        "train.epochs=5",
        "train.verbose=0",
        "train.callbacks.tensorboard=false",
        f"hydra.run.dir={TRAINED_RUN}",
        cwd=workdir,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return workdir
