"""Records written before the package move (schema 1) read with today's module paths; user code and current records
are left alone (tfrun.runner.records.legacy)."""

from __future__ import annotations

import copy
import importlib
import json
from pathlib import Path

import pytest

from tfrun.runner.records import legacy
from tfrun.runner.records import record as records
from tfrun.runner.records.resume import resume_key

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "records" / "pre_tfrun_package"
OLD_RUN = FIXTURE / "train_run" / "record.json"

# every tfrun `_target_` a config or Hydra callback of schema 1 could name (from the git history of conf/ and the
# schemas), and where it is now
OLD_TARGETS = {
    "tasks.data.load_digits": "tfrun.tasks.data.load_digits",
    "tasks.data.load_fashion_mnist": "tfrun.tasks.data.load_fashion_mnist",
    "tasks.data.load_mnist": "tfrun.tasks.data.load_mnist",
    "tasks.data.load_files": "tfrun.tasks.data.load_files",
    "tasks.model.build_mlp": "tfrun.tasks.model.build_mlp",
    "tasks.model.build_cnn": "tfrun.tasks.model.build_cnn",
    "tasks.hardware.configure": "tfrun.tasks.hardware.configure",
    "tasks.strategy.one_device": "tfrun.tasks.strategy.one_device",
    "tasks.strategy.mirrored": "tfrun.tasks.strategy.mirrored",
    "tasks.strategy.central_storage": "tfrun.tasks.strategy.central_storage",
    "tasks.strategy.multi_worker": "tfrun.tasks.strategy.multi_worker",
    "tasks.strategy.parameter_server": "tfrun.tasks.strategy.parameter_server",
    "tasks.strategy.tpu": "tfrun.tasks.strategy.tpu",
    "runner.sweeps.callback.SweepSummary": "tfrun.runner.sweeps.callback.SweepSummary",
    "runner.sweep_callback.SweepSummary": "tfrun.runner.sweeps.callback.SweepSummary",
}  # (ResumeOptunaStudy, the callback that continued hydra-optuna-sweeper's studies, went: tfrun's sweeper does it)


def old_record() -> dict:
    return json.loads(OLD_RUN.read_text())


@pytest.mark.parametrize("old,new", sorted(OLD_TARGETS.items()))
def test_each_old_path_maps_to_code_that_exists_today(old, new):
    assert legacy.module_path(old) == new
    module, _, name = new.rpartition(".")
    assert callable(getattr(importlib.import_module(module), name))


@pytest.mark.parametrize(
    "path", ["mypkg.fn", "tasks_extra.fn", "my.tasks.fn", "tfrun.tasks.model.build_mlp", "tasks", "runnerx.y"]
)
def test_other_paths_are_left_alone(path):
    assert legacy.module_path(path) == path


def test_the_fixture_is_a_schema_1_record_naming_the_old_modules():
    data = old_record()
    assert data["schema_version"] == 1 < records.SCHEMA_VERSION
    assert data["config"]["model"]["_target_"] == "tasks.model.build_mlp"
    assert data["config_sha256"] == records.config_hash(data["config"])


def test_an_old_record_reads_with_todays_paths_and_hashes():
    data = records.load(OLD_RUN)
    assert data["schema_version"] == records.SCHEMA_VERSION
    config = data["config"]
    assert [config[g]["_target_"] for g in ("data", "model", "hardware", "strategy")] == [
        "tfrun.tasks.data.load_digits",
        "tfrun.tasks.model.build_mlp",
        "tfrun.tasks.hardware.configure",
        "tfrun.tasks.strategy.one_device",
    ]
    assert "tasks." not in json.dumps(config).replace("tfrun.tasks.", "")
    # the hashes are those a run of the same config writes today (what rerun and train.resume compare)
    assert data["config_sha256"] == records.config_hash(config)
    assert data["resume_key"] == resume_key(config)
    written = old_record()
    assert data["upgraded_from"] == {
        "schema_version": 1,
        "config_sha256": written["config_sha256"],
        "resume_key": written["resume_key"],
    }
    # everything else as written
    for key in ("run_id", "status", "metrics", "weights_sha256", "artifacts", "steps", "code", "environment"):
        assert data[key] == written[key]


def test_upgrade_is_pure_and_idempotent():
    written = old_record()
    kept = copy.deepcopy(written)
    once = legacy.upgrade(written)
    assert written == kept
    assert legacy.upgrade(once) == once


def test_a_current_record_is_never_mapped():
    data = old_record()
    data["schema_version"] = records.SCHEMA_VERSION  # a user's own `tasks` package is allowed since the move
    data["command"]["overrides"] = ["data._target_=tasks.load"]
    for key, value in legacy.added_keys(data).items():  # keys the schema gained since (sweep, ...) are only added
        data["config"].setdefault(key, value)
    assert legacy.upgrade(data) is data


def test_user_targets_are_left_alone_even_under_an_old_prefix():
    data = old_record()
    data["config"]["model"] = {"_target_": "mymodels.build", "name": "mine"}
    data["config"]["train"]["extra_callbacks"] = [{"_target_": "tasks.callbacks.Stop"}, {"_target_": "cb.Other"}]
    data["code"]["user"] = {
        "model": {"target": "mymodels.build", "file": "mymodels.py", "sha256": "0" * 64},
        "train.extra_callbacks[0]": {"target": "tasks.callbacks.Stop", "file": "tasks/callbacks.py", "sha256": None},
        "train.extra_callbacks[1]": {"target": "cb.Other", "file": "cb.py", "sha256": None},
    }
    new = legacy.upgrade(data)
    assert new["config"]["model"]["_target_"] == "mymodels.build"
    assert [c["_target_"] for c in new["config"]["train"]["extra_callbacks"]] == ["tasks.callbacks.Stop", "cb.Other"]
    assert new["code"]["user"] == data["code"]["user"]
    assert new["config"]["data"]["_target_"] == "tfrun.tasks.data.load_digits"


def test_replayed_overrides_name_todays_modules_and_other_values_stay():
    data = old_record()
    data["command"]["overrides"] = [
        "strategy._target_=tasks.strategy.mirrored",
        "+hydra.callbacks.s._target_=runner.sweep_callback.SweepSummary",
        "+train.extra_callbacks=[{_target_: tasks.strategy.tpu}, {_target_: mypkg.Cb}]",
        "data.path=data/tasks.csv",
        "model_name=runner.v2",
        "train.epochs=1",
    ]
    data["command"]["argv"] = ["tfrun", "--config-dir", "conf", *data["command"]["overrides"]]
    new = legacy.upgrade(data)
    expected = [
        "strategy._target_=tfrun.tasks.strategy.mirrored",
        "+hydra.callbacks.s._target_=tfrun.runner.sweeps.callback.SweepSummary",
        "+train.extra_callbacks=[{_target_: tfrun.tasks.strategy.tpu}, {_target_: mypkg.Cb}]",
        "data.path=data/tasks.csv",
        "model_name=runner.v2",
        "train.epochs=1",
    ]
    assert new["command"]["overrides"] == expected
    assert new["command"]["argv"] == ["tfrun", "--config-dir", "conf", *expected]


def test_a_redacted_config_keeps_its_recorded_hash():
    data = old_record()
    data["config"]["cloud"] = {"name": "vertex", "api_key": records.REDACTED}  # not what was hashed
    new = legacy.upgrade(data)
    assert new["config_sha256"] == data["config_sha256"]
    assert new["config"]["model"]["_target_"] == "tfrun.tasks.model.build_mlp"
    assert "config_sha256" not in new["upgraded_from"]


@pytest.mark.parametrize(
    "damaged",
    [
        [1, 2],
        "text",
        {"schema_version": 1, "config": "oops", "command": {"overrides": "x"}, "code": {"user": []}},
        {"schema_version": "1", "config": {"model": {"_target_": "tasks.model.build_mlp"}}},
    ],
)
def test_a_damaged_record_is_passed_on_for_the_loader_to_name(damaged):
    kept = copy.deepcopy(damaged)
    new = legacy.upgrade(damaged)
    assert damaged == kept
    if isinstance(damaged, dict) and damaged["schema_version"] == 1:
        assert new["config"] == "oops" and new["command"] == {"overrides": "x"}
    else:
        assert new is damaged


def old_sweep(tmp_path: Path, task: list[str]) -> Path:
    """A copy of the fixture's sweep whose multirun.yaml holds `task` as its overrides."""
    from omegaconf import OmegaConf

    manifest = OmegaConf.load(FIXTURE / "sweep" / "multirun.yaml")
    manifest.hydra.overrides.task = task
    sweep = tmp_path / "multiruns" / "s"
    sweep.mkdir(parents=True)
    OmegaConf.save(manifest, sweep / "multirun.yaml")
    return sweep


def test_an_old_sweeps_jobs_are_planned_with_todays_module_paths(tmp_path):
    from tfrun.runner.sweeps.resume import planned_jobs

    assert planned_jobs(FIXTURE / "sweep") == [
        ["train.epochs=1", "model.n_hidden=1"],
        ["train.epochs=1", "model.n_hidden=2"],
    ]
    sweep = old_sweep(
        tmp_path, ["data._target_=tasks.data.load_digits", "strategy._target_=tasks.strategy.mirrored,mypkg.s"]
    )
    assert planned_jobs(sweep) == [
        ["data._target_=tfrun.tasks.data.load_digits", "strategy._target_=tfrun.tasks.strategy.mirrored"],
        ["data._target_=tfrun.tasks.data.load_digits", "strategy._target_=mypkg.s"],
    ]


def test_a_current_sweeps_overrides_are_never_mapped():
    manifest = {
        "hydra": {
            "callbacks": {"sweep_summary": {"_target_": "tfrun.runner.sweeps.callback.SweepSummary"}},
            "overrides": {"task": ["data._target_=tasks.load"]},  # the user's own tasks.py
        }
    }
    assert legacy.sweep_overrides(manifest) == ["data._target_=tasks.load"]
    assert legacy.sweep_overrides({"hydra": None}) == [] == legacy.sweep_overrides("damaged")
