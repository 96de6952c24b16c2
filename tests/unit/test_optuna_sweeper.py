"""tfrun's Optuna sweeper without a job: the params grammar as Optuna distributions, the pruner and its checks,
the study told how each job ended, and the link a job finds its trial by."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

optuna = pytest.importorskip("optuna")

from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution  # noqa: E402

from tfrun.runner.sweeps import optuna_resume, optuna_space, trial_link  # noqa: E402
from tfrun.tasks import pruning  # noqa: E402
from tfrun.tasks.core.schema.sweep import OptunaSweep, Pruner  # noqa: E402


def test_optuna_is_4_or_newer():
    assert int(optuna.__version__.split(".")[0]) >= 4


def test_the_book_space_and_the_grammar_users_write():
    space = optuna_space.parse(
        [
            "train.learning_rate=tag(log, interval(1e-4, 1e-1))",
            "model.n_hidden=range(0, 3)",
            "model.n_neurons=choice(16, 32, 64)",
            "train.optimizer=choice(sgd, adam)",
            "train.momentum=interval(0, 1)",
            "train.batch_size=interval(16, 64)",
            "data.validation_fraction=range(0.1, 0.3, 0.1)",
            "model.dropout=shuffle(range(0, 3))",
            "train.epochs=3",
            "sweep=optuna",
            "+extra.key=1",
        ]
    )
    d = space.distributions
    assert d["train.learning_rate"] == FloatDistribution(1e-4, 1e-1, log=True)
    assert d["model.n_hidden"] == IntDistribution(0, 3)  # hydra-optuna-sweeper's meaning: stop included
    assert d["model.n_neurons"] == CategoricalDistribution([16, 32, 64])
    assert d["train.optimizer"] == CategoricalDistribution(["sgd", "adam"])
    assert d["train.momentum"] == FloatDistribution(0, 1)  # Hydra's interval() bounds are floats
    assert d["train.batch_size"] == FloatDistribution(16, 64)
    assert d["data.validation_fraction"] == FloatDistribution(0.1, 0.3, step=0.1)
    assert isinstance(d["model.dropout"], CategoricalDistribution)
    assert space.fixed == ["train.epochs=3", "sweep=optuna", "+extra.key=1"]
    trial = {"model.n_neurons": 32, "train.optimizer": "adam", "train.learning_rate": 0.01}
    assert optuna_space.trial_overrides(space, trial)[:3] == [
        "model.n_neurons=32",
        "train.optimizer=adam",
        "train.learning_rate=0.01",
    ]


def test_the_command_line_wins_over_params():
    space = optuna_space.parse(
        ["model.n_hidden=range(0, 3)", "model.n_hidden=2", "train.epochs=1", "train.epochs=choice(1,2)"]
    )
    assert "model.n_hidden" not in space.distributions and space.fixed == ["model.n_hidden=2"]
    assert space.distributions["train.epochs"] == CategoricalDistribution([1, 2])


def test_grid_points_include_the_range_end():
    space = optuna_space.parse(["model.n_hidden=range(0, 2)", "train.optimizer=choice(sgd, adam)"])
    assert space.grid() == {"model.n_hidden": [0, 1, 2], "train.optimizer": ["sgd", "adam"]}
    with pytest.raises(optuna_space.SearchSpaceError, match="grid sampler needs choice"):
        optuna_space.parse(["train.learning_rate=tag(log, interval(1e-4, 1e-1))"]).grid()


@pytest.mark.parametrize(
    "override, words",
    [
        ("train.learning_rate=interval(0.1, 0.01)", "low < high"),
        ("train.learning_rate=tag(log, interval(0, 0.1))", "low > 0"),
    ],
)
def test_a_space_optuna_cannot_sample_is_one_line(override, words):
    with pytest.raises(optuna_space.SearchSpaceError, match=words) as err:
        optuna_space.parse([override])
    assert override in str(err.value) and "\n" not in str(err.value)


def test_each_pruner_with_its_knobs():
    sweep = OptunaSweep(pruner=Pruner.median, n_startup_trials=3, n_warmup_steps=2)
    median = pruning.build_pruner(sweep, 10)
    assert isinstance(median, optuna.pruners.MedianPruner)
    assert median._n_startup_trials == 3 and median._n_warmup_steps == 2
    band = pruning.build_pruner(OptunaSweep(pruner=Pruner.hyperband, min_resource=2, reduction_factor=2), 12)
    assert isinstance(band, optuna.pruners.HyperbandPruner) and band._max_resource == 12
    halving = pruning.build_pruner(OmegaConf.structured(OptunaSweep(pruner=Pruner.successive_halving)), 5)
    assert isinstance(halving, optuna.pruners.SuccessiveHalvingPruner)
    child_cfg = OmegaConf.create({"pruner": "none"})  # a child's plain DictConfig
    assert isinstance(pruning.build_pruner(child_cfg, 5), optuna.pruners.NopPruner)


def _config(**over):
    values = {
        "sweep": OmegaConf.structured(OptunaSweep(pruner=Pruner.median)),
        "optimized_metric": "holdout_accuracy",
        "cluster": {"name": "none"},
        "train": {"epochs": 4},
        "data": {"validation_fraction": 0.1},
    }
    config = OmegaConf.create(values)
    for key, value in over.items():
        OmegaConf.update(config, key, value, force_add=True)
    return config


def test_the_per_epoch_metric_follows_the_optimized_one():
    assert optuna_resume.Settings.of(_config(), ["maximize"]).monitor == "val_accuracy"
    assert optuna_resume.Settings.of(_config(optimized_metric="holdout_loss"), ["minimize"]).monitor == "val_loss"
    assert optuna_resume.Settings.of(_config(**{"sweep.pruner": "none"}), ["maximize"]).monitor is None


@pytest.mark.parametrize(
    "over, directions, words",
    [
        ({"optimized_metric": "f1_score"}, ["maximize"], ["sweep.pruner", "median", "optimized_metric=f1_score"]),
        ({"cluster": {"name": "local"}}, ["maximize"], ["sweep.pruner", "one-process jobs"]),
        ({"data.validation_fraction": 0.0}, ["maximize"], ["data.validation_fraction", "val_accuracy"]),
        ({}, ["maximize", "minimize"], ["sweep.pruner", "several objectives"]),
        ({"sweep.reduction_factor": 1}, ["maximize"], ["sweep.reduction_factor"]),
    ],
)
def test_pruner_mistakes_stop_the_sweep_with_exit_2(capsys, over, directions, words):
    with pytest.raises(SystemExit) as stopped:
        optuna_resume.Settings.of(_config(**over), directions)
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "nothing was launched" in err
    for word in words:
        assert word in err, err


def _result(run_dir: Path, status: str, value: float | None):
    from hydra.core.utils import JobStatus

    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "record.json").write_text(json.dumps({"schema_version": 3, "status": status, "run_id": "x"}))
    hydra_cfg = OmegaConf.create({"hydra": {"runtime": {"output_dir": str(run_dir)}}})
    return SimpleNamespace(status=JobStatus.COMPLETED, return_value=value, hydra_cfg=hydra_cfg)


def test_the_study_is_told_what_the_record_says(tmp_path):
    study = optuna.create_study(direction="maximize")
    settings = optuna_resume.Settings(OptunaSweep(pruner=Pruner.median), 4, "val_accuracy")
    states = []
    for number, (status, value) in enumerate([("succeeded", 0.9), ("pruned", float("nan")), ("failed", float("nan"))]):
        trial = study.ask()
        trial.report(0.5, 1)
        states.append(optuna_resume.tell(study, trial, _result(tmp_path / str(number), status, value), settings))
    TS = optuna.trial.TrialState
    assert states == [TS.COMPLETE, TS.PRUNED, TS.FAIL]
    assert [t.state for t in study.trials] == [TS.COMPLETE, TS.PRUNED, TS.FAIL]
    assert study.trials[1].value == 0.5  # a pruned trial's value is its last report


def test_a_job_finds_its_trial_by_its_number_and_only_in_this_sweeper(tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask()
    monkeypatch.chdir(tmp_path)
    trial_link.write(Path("sweep"), trial.number, study, trial, "sqlite:///optuna.db")
    hydra_cfg = OmegaConf.create(
        {"sweeper": {"_target_": trial_link.SWEEPER}, "sweep": {"dir": "sweep"}, "job": {"num": trial.number}}
    )
    env = trial_link.job_env(hydra_cfg)
    link = json.loads(env[pruning.TRIAL_ENV])
    assert link["storage"] == storage and link["trial_id"] == trial._trial_id and link["study_name"] == "s"
    other = OmegaConf.merge(hydra_cfg, {"job": {"num": trial.number + 1}})
    assert trial_link.job_env(other) == {}
    grid = OmegaConf.merge(
        hydra_cfg, {"sweeper": {"_target_": "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"}}
    )
    assert trial_link.job_env(grid) == {}
    trial_link.remove(Path("sweep"), trial.number)
    assert trial_link.job_env(hydra_cfg) == {} and not (tmp_path / "sweep" / trial_link.FOLDER).exists()


def test_no_trial_no_callback_and_no_optuna(monkeypatch):
    monkeypatch.delenv(pruning.TRIAL_ENV, raising=False)
    assert pruning.callback(None, None) is None


def _sweep_config(tmp_path: Path, storage: str):
    return OmegaConf.create(
        {
            "hydra": {
                "overrides": {"task": ["sweep=optuna"], "hydra": []},
                "sweep": {"dir": str(tmp_path)},
                "sweeper": {"study_name": "digits_mlp", "storage": storage, "direction": "maximize", "params": {}},
            }
        }
    )


def test_a_study_stored_by_optuna_2_is_refused_with_the_upgrade_command_which_works(tmp_path, capsys):
    """hydra-optuna-sweeper's storage (made by Optuna 2.10.1: tests/fixtures/optuna-2.10-study.db.gz)."""
    import gzip
    import shutil
    import subprocess
    import sys

    fixture = Path(__file__).parent.parent / "fixtures" / "optuna-2.10-study.db.gz"
    with gzip.open(fixture) as src, open(tmp_path / "optuna.db", "wb") as dst:
        shutil.copyfileobj(src, dst)
    storage = f"sqlite:///{tmp_path}/optuna.db"
    settings = optuna_resume.Settings(OptunaSweep(), 4, None)
    with pytest.raises(SystemExit) as stopped:
        optuna_resume.open_study(_sweep_config(tmp_path, storage), "digits_mlp", storage, ["maximize"], None, settings)
    err = capsys.readouterr().err
    assert stopped.value.code == 2 and f"optuna storage upgrade --storage {storage}" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    upgrade = subprocess.run(
        [str(Path(sys.executable).parent / "optuna"), "storage", "upgrade", "--storage", storage],
        capture_output=True,
        text=True,
    )
    assert upgrade.returncode == 0, upgrade.stderr
    study = optuna_resume.open_study(
        _sweep_config(tmp_path, storage), "digits_mlp", storage, ["maximize"], None, settings
    )
    assert optuna_resume.finished_trials(study) == 1 and study.trials[0].value == 0.9


def test_a_killed_sweeps_running_trials_are_failed_when_it_is_continued(tmp_path):
    storage = f"sqlite:///{tmp_path}/optuna.db"
    settings = optuna_resume.Settings(OptunaSweep(), 4, None)
    config = _sweep_config(tmp_path, storage)
    study = optuna_resume.open_study(config, "digits_mlp", storage, ["maximize"], None, settings)
    study.tell(study.ask(), 0.5)
    study.ask()  # its job was killed
    again = optuna_resume.open_study(config, "digits_mlp", storage, ["maximize"], None, settings)
    TS = optuna.trial.TrialState
    assert [t.state for t in again.trials] == [TS.COMPLETE, TS.FAIL] and optuna_resume.finished_trials(again) == 1
    assert again.ask().number == 2, "the next job comes after every earlier trial"


@pytest.mark.parametrize(
    "overrides, sweep",
    [
        (["train.epochs=1"], {"name": "none"}),
        (["sweep=optuna", "model.n_neurons=32"], {**OmegaConf.to_container(OmegaConf.structured(OptunaSweep))}),
    ],
)
def test_a_record_written_before_the_sweep_key_reads_with_the_one_its_command_chose(overrides, sweep):
    """Its config, hash and resume key as a rerun (or a resumed run) of it composes them today."""
    from tfrun.runner.records import legacy
    from tfrun.runner.records import record as records
    from tfrun.tasks.core.record_io import SCHEMA_VERSION, config_hash, resume_key

    fixture = Path(__file__).resolve().parent.parent / "fixtures" / "records" / "pre_tfrun_package" / "train_run"
    config = {k: v for k, v in records.load(fixture)["config"].items() if k != "sweep"}  # all of today's but sweep
    record = {
        "schema_version": SCHEMA_VERSION,
        "command": {"overrides": overrides},
        "config": config,
        "config_sha256": config_hash(config),
        "resume_key": resume_key(config),
    }
    read = legacy.upgrade(record)
    sweep = {k: getattr(v, "value", v) for k, v in sweep.items()}
    assert read["config"]["sweep"] == sweep
    assert read["config_sha256"] == config_hash({**config, "sweep": sweep})
    assert read["resume_key"] == resume_key({**config, "sweep": sweep})
    assert read["config_keys_added"]["keys"] == ["sweep"] and "sweep" not in record["config"]
    assert legacy.upgrade(read) is read, "a record with every key is read as it is"


def test_the_grid_samplers_last_point_is_told_without_stopping_the_sweeper(tmp_path):
    """GridSampler calls study.stop() once its grid is done, which raises outside study.optimize."""
    space = optuna_space.parse(["train.optimizer=choice(sgd, adam)"])
    study = optuna.create_study(sampler=optuna.samplers.GridSampler(space.grid(), seed=0), direction="maximize")
    settings = optuna_resume.Settings(OptunaSweep(), 4, None)
    trials = [study.ask(dict(space.distributions)) for _ in range(2)]
    for number, trial in enumerate(trials):
        optuna_resume.tell(study, trial, _result(tmp_path / str(number), "succeeded", 0.5 + number / 10), settings)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert sorted(t.params["train.optimizer"] for t in study.trials) == ["adam", "sgd"]
