"""An Optuna study is continued only with the settings it was made with (tfrun.runner.sweeps.study_settings)."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from tfrun.runner.sweeps import study_settings

optuna = pytest.importorskip("optuna")


def _config(tmp_path, overrides, params=None, direction="maximize"):
    return OmegaConf.create(
        {
            "hydra": {
                "overrides": {"task": overrides, "hydra": []},
                "sweep": {"dir": str(tmp_path / "sweep")},
                "sweeper": {
                    "study_name": "digits_mlp",
                    "storage": f"sqlite:///{tmp_path / 'sweep'}/optuna.db",
                    "direction": direction,
                    "params": params or {"train.learning_rate": "tag(log, interval(1e-4, 1e-1))"},
                },
            }
        }
    )


def _study(tmp_path):
    (tmp_path / "sweep").mkdir(exist_ok=True)
    return optuna.create_study(
        study_name="digits_mlp", storage=f"sqlite:///{tmp_path / 'sweep'}/optuna.db", load_if_exists=True
    )


def test_a_new_study_keeps_its_settings_and_the_same_ones_continue_it(tmp_path):
    config = _config(tmp_path, ["train.epochs=1", "sweep=optuna"])
    study_settings.check(_study(tmp_path), config)
    kept = _study(tmp_path).user_attrs[study_settings.ATTR]
    assert kept["overrides"] == ["sweep=optuna", "train.epochs=1"]
    study_settings.check(_study(tmp_path), _config(tmp_path, ["sweep=optuna", "train.epochs=1"]))  # order is no matter


@pytest.mark.parametrize(
    "overrides, params, direction, words",
    [
        (["train.epochs=3"], None, "maximize", ["fixed overrides: train.epochs=1 before → train.epochs=3 now"]),
        (["train.epochs=1"], {"model.n_hidden": "range(0, 3)"}, "maximize", ["model.n_hidden: (not searched)"]),
        (["train.epochs=1"], None, "minimize", ["direction: maximize before → minimize now"]),
    ],
)
def test_other_settings_stop_before_any_trial(tmp_path, capsys, overrides, params, direction, words):
    study_settings.check(_study(tmp_path), _config(tmp_path, ["train.epochs=1"]))
    with pytest.raises(SystemExit) as stopped:
        study_settings.check(_study(tmp_path), _config(tmp_path, overrides, params, direction))
    assert stopped.value.code == 2
    message = capsys.readouterr().err
    for word in [*words, "hydra.sweeper.study_name=", "nothing was run", f"move {tmp_path / 'sweep'} aside"]:
        assert word in message, message
    assert _study(tmp_path).user_attrs[study_settings.ATTR]["overrides"] == ["train.epochs=1"], "kept unchanged"
