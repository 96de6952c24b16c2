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
    assert "k8s" in data["config_keys_added"]["keys"] and "k8s" not in written["config"]
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
    legacy.fill(data["config"], data)  # keys the schema gained since (sweep, k8s, ...) are only added
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


# ------------------------------------------------------------- keys the schema gained since a record was written
def composed_today(tmp_path: Path, overrides: list[str]) -> dict:
    """The resolved config `tfrun OVERRIDES` composes today, as a record holds it (what a rerun of it hashes)."""
    from omegaconf import OmegaConf, open_dict

    from tfrun.runner.api.compose import composed

    with composed(overrides, None, tmp_path, multirun=False) as cfg:
        with open_dict(cfg):
            del cfg["hydra"]
        return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def test_the_fixture_reads_as_the_config_its_command_composes_today(tmp_path):
    data = records.load(OLD_RUN)
    today = composed_today(tmp_path, data["command"]["overrides"])
    assert data["config"] == today
    assert data["config_sha256"] == records.config_hash(today) and data["resume_key"] == resume_key(today)


def drop(config: dict, key: str) -> None:
    *parents, last = key.split(".")
    node = config
    for part in parents:
        node = node[part]
    del node[last]


# keys added today (git log -- tasks/core/schema), nested ones, whole nodes, enums and interpolated defaults
DROPPED = [
    "alias",
    "source",
    "sweep",
    "k8s",
    "target.replicas",
    "target.split",
    "target.version_labels",
    "target.split_requests",
    "target.config_poll_seconds",
    "target.metrics",
    "target.base_path",  # ${models_dir}
    "target.batching.max_batch_size",  # inside a nested dataclass
    "track.register",
    "serve.replicas",
    "serve.metrics",
    "serve.config_poll_seconds",
    "serve.model_name",  # ${model_name}
    "tuning.early_stopping",  # an enum, stored as its value
    "tuning.display_name",  # ${model_name}-tuning
    "train.callbacks.early_stopping",  # a nested dataclass, whole
    "train.optimizer",
]


def test_a_record_missing_nested_keys_reads_as_the_config_composed_today(tmp_path):
    overrides = ["train.epochs=1", "target=tfserving", "track=mlflow", "model=cnn"]
    today = composed_today(tmp_path, overrides)
    written = copy.deepcopy(today)
    for key in DROPPED:
        drop(written, key)
    record = {
        "schema_version": records.SCHEMA_VERSION,
        "command": {"argv": ["tfrun", *overrides], "overrides": overrides},
        "config": written,
        "config_sha256": records.config_hash(written),
        "resume_key": resume_key(written),
    }
    kept = copy.deepcopy(record)
    read = legacy.upgrade(record)
    assert record == kept, "the record as written is left alone"
    assert read["config"] == today
    assert read["config_sha256"] == records.config_hash(today) and read["resume_key"] == resume_key(today)
    assert sorted(read["config_keys_added"]["keys"]) == sorted(DROPPED)
    assert read["config_keys_added"]["config_sha256"] == record["config_sha256"]
    assert read["config"]["tuning"]["early_stopping"] == "none" and read["config"]["train"]["optimizer"] == "adam"
    assert legacy.upgrade(read) is read


def test_the_sweep_key_is_the_one_the_command_chose_not_the_default():
    data = old_record()
    data["command"]["overrides"] = ["train.epochs=1", "sweep=optuna"]
    read = legacy.upgrade(data)
    assert read["config"]["sweep"]["name"] == "optuna" and read["config"]["sweep"]["pruner"] == "none"


def test_user_nodes_and_unknown_options_gain_no_keys():
    data = old_record()
    data["config"]["model"] = {"_target_": "mymodels.build", "name": "mlp"}  # a user's, under tfrun's name
    data["config"]["data"] = {"_target_": "tasks.data.load_digits", "name": "mine"}  # an option tfrun has not
    data["config"]["strategy"] = {"_target_": "mystrategy.make", "name": "default"}
    data["code"]["user"] = {"strategy": {"target": "mystrategy.make", "file": "mystrategy.py", "sha256": None}}
    read = legacy.upgrade(data)
    assert read["config"]["model"] == {"_target_": "mymodels.build", "name": "mlp"}
    assert read["config"]["data"] == {"_target_": "tfrun.tasks.data.load_digits", "name": "mine"}
    assert read["config"]["strategy"] == {"_target_": "mystrategy.make", "name": "default"}
    assert not [k for k in read["config_keys_added"]["keys"] if k.split(".")[0] in ("model", "data", "strategy")]


def test_a_default_naming_a_key_the_config_lacks_is_left_out():
    data = old_record()
    data["schema_version"] = records.SCHEMA_VERSION
    config = data["config"]
    del config["serve"]["model_name"], config["model_name"], config["data"]["name"]  # data: no option known now
    del config["serve"]["base_path"], config["models_dir"]  # ${models_dir}, added after serve: a second pass
    read = legacy.upgrade(data)
    assert "name" not in read["config"]["data"] and "model_name" not in read["config"]
    assert "model_name" not in read["config"]["serve"]
    assert read["config"]["models_dir"] == "models" == read["config"]["serve"]["base_path"]
    assert read["config"]["k8s"]["namespace"] == "default"


def leaf_paths(node: dict, where: str = "") -> list[str]:
    paths = []
    for key, value in node.items():
        path = f"{where}.{key}" if where else key
        paths += leaf_paths(value, path) if isinstance(value, dict) and value else [path]
    return paths


def wrongly_filled(config: dict, paths: list[str], overrides: list[str]) -> list[str]:
    """The keys that, missing from a record of `overrides`, would read with a value other than today's."""
    wrong = []
    for path in paths:
        missing = copy.deepcopy(config)
        drop(missing, path)
        legacy.fill(missing, {"command": {"overrides": overrides}})
        node, rest = [missing], path.split(".")
        for part in rest:
            node = [n[part] for n in node if isinstance(n, dict) and part in n]
        if node and node[0] != config_value(config, path):
            wrong.append(path)
    return wrong


def config_value(config: dict, path: str):
    for part in path.split("."):
        config = config[part]
    return config


def test_every_default_a_record_could_lack_is_what_the_options_yaml_composes(tmp_path):
    """The fill reads the schemas' dataclass defaults: an option's YAML that set a key to another value would make
    a record lacking it read wrongly (such a key belongs in CHOSEN_BY_RECORD). A key that cannot be filled (a
    group's `name`, a MISSING value, an entry of a dict default) is left out, which a rerun reports honestly."""
    from tfrun.tasks.core.schema import SCHEMAS

    config = composed_today(tmp_path, [])
    assert wrongly_filled(config, leaf_paths(config), []) == []
    for group, options in SCHEMAS.items():
        for name in options:
            overrides = [f"{group}={name}"]
            config = composed_today(tmp_path, overrides)
            assert wrongly_filled(config, leaf_paths(config[group], group), overrides) == [], overrides
