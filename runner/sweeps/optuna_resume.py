"""Make a restarted Optuna sweep continue its study instead of starting over.

Hydra's Optuna sweeper with a persistent `storage` loads the study again,
but would run n_trials *more* trials and number its jobs from 0, writing
into the earlier job dirs. This Hydra callback runs before the sweeper is
made: it marks trials a killed sweep left RUNNING as FAIL, lowers n_trials
by the trials already finished, and numbers new job dirs after the
existing trials (through an override every job config receives).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, open_dict, read_write

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
