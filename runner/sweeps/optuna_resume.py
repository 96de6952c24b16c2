"""Make a restarted Optuna sweep continue its study instead of starting over, and only with its own settings.

Hydra's Optuna sweeper with a persistent `storage` loads the study again,
but would run n_trials *more* trials and number its jobs from 0, writing
into the earlier job dirs. This Hydra callback runs before the sweeper is
made: it marks trials a killed sweep left RUNNING as FAIL, lowers n_trials
by the trials already finished, and numbers new job dirs after the
existing trials (through an override every job config receives).

A study is continued only by a sweep with the settings it was made with (the fixed overrides, the search space
and the direction, kept in the study's user attrs): another sweep under the same name stops with exit 2 before
any job runs (tfrun.runner.sweeps.study_settings), instead of silently adding trials of another setting.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

from tfrun.runner.sweeps import study_settings

log = logging.getLogger(__name__)


class ResumeOptunaStudy(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweeper = config.hydra.sweeper
        if "storage" not in sweeper or not sweeper.storage or "n_trials" not in sweeper:
            return
        import optuna

        Path(config.hydra.sweep.dir).mkdir(parents=True, exist_ok=True)  # sqlite storage lives in it
        directions = [sweeper.direction] if isinstance(sweeper.direction, str) else list(sweeper.direction)
        study = optuna.create_study(
            study_name=sweeper.study_name, storage=sweeper.storage, directions=directions, load_if_exists=True
        )
        study_settings.check(study, config)  # exit 2 when it was made with other settings
        for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # its sweep was killed
        finished = len(
            study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED))
        )
        existing = len(study.trials)
        if not existing:
            return
        wanted = int(sweeper.n_trials)
        with read_write(config), open_dict(config):
            config.hydra.sweeper.n_trials = max(0, wanted - finished)
            config.hydra.overrides.hydra.append(f"hydra.sweep.subdir='${{tfrun_add:${{hydra.job.num}},{existing}}}'")
        log.info(
            f"Study {sweeper.study_name}: {finished} of {wanted} trials finished before; "
            f"running {config.hydra.sweeper.n_trials} more, as jobs {existing} and up"
        )
