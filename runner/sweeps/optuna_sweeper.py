"""tfrun's Optuna sweeper: `hydra/sweeper=optuna` (chosen by `sweep=optuna`) on current Optuna, with pruning.

A Hydra `Sweeper` with hydra-optuna-sweeper 1.3's keys (direction, study_name, storage, n_trials, n_jobs, sampler,
params, custom_search_space, max_failure_rate). It asks the study for n_jobs trials at a time, launches them as
one batch through the configured launcher (basic: in turn; joblib: in parallel), and tells the study how each
ended, read from the job's record: `succeeded` with its metric → COMPLETE, `pruned` → PRUNED, anything else → FAIL.
Job number = trial number, so a continued study numbers its jobs after the earlier ones and never reuses a folder.

Each job finds its trial through a link file the sweeper writes before launching it (tfrun.runner.sweeps.
trial_link): the runner passes it to the job's process in an environment variable, so neither the job's config nor
its command line mentions the trial, and `tfrun-records rerun` of a pruned trial trains it fully.
"""

from __future__ import annotations

import logging
import math
import sys
from pathlib import Path
from typing import Any, Optional

from hydra.plugins.sweeper import Sweeper
from omegaconf import DictConfig

log = logging.getLogger(__name__)


class OptunaSweeper(Sweeper):
    def __init__(
        self,
        sampler: Any = None,
        direction: Any = "minimize",
        storage: Optional[str] = None,
        study_name: Optional[str] = None,
        n_trials: int = 20,
        n_jobs: int = 2,
        max_failure_rate: float = 1.0,
        params: Optional[DictConfig] = None,
        custom_search_space: Optional[str] = None,
    ) -> None:
        self.sampler = sampler
        self.directions = [str(direction)] if isinstance(direction, str) else [str(d) for d in direction]
        self.storage = storage
        self.study_name = study_name
        self.n_trials = int(n_trials)
        self.n_jobs = max(int(n_jobs), 1)
        self.max_failure_rate = float(max_failure_rate)
        self.params = params
        self.custom_search_space = custom_search_space
        self.config: Optional[DictConfig] = None
        self.launcher: Any = None
        self.hydra_context: Any = None

    def setup(self, *, hydra_context: Any, task_function: Any, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins

        self.config = config
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            config=config, hydra_context=hydra_context, task_function=task_function
        )

    def sweep(self, arguments: list[str]) -> list[Any]:
        import optuna

        from tfrun.runner.sweeps import optuna_resume as optuna_study
        from tfrun.runner.sweeps import optuna_space, trial_link

        assert self.config is not None and self.launcher is not None
        config = self.config
        settings = optuna_study.Settings.of(config, self.directions)  # exit 2 on a bad one, before any job
        if settings.prunes and not self.storage:
            _refuse(
                f"hydra.sweeper.storage=null: a storage the jobs reach (sqlite:///<path>/optuna.db) when "
                f"sweep.pruner={settings.sweep.pruner.value}: each job reports its epochs to the study"
            )
        params = [f"{k}={v}" for k, v in (self.params or {}).items()]
        try:
            space = optuna_space.parse([*params, *arguments])
        except optuna_space.SearchSpaceError as err:
            _refuse(str(err))
        sampler = self.sampler
        n_trials = self.n_trials
        if callable(sampler) and not isinstance(sampler, optuna.samplers.BaseSampler):  # GridSampler, _partial_
            try:
                grid = space.grid()
            except optuna_space.SearchSpaceError as err:
                _refuse(str(err))
            sampler = sampler(grid)
            n_trials = min(n_trials, math.prod(len(v) for v in grid.values()))
        study = optuna_study.open_study(config, self.study_name, self.storage, self.directions, sampler, settings)
        finished = optuna_study.finished_trials(study)
        to_go = max(0, n_trials - finished)
        if finished:
            log.info(
                f"Study {study.study_name}: {finished} of {n_trials} trials finished before; running {to_go} more, "
                f"as jobs {len(study.trials)} and up"
            )
        extend = self._custom_search_space()
        sweep_dir = Path(str(config.hydra.sweep.dir))
        returns: list[Any] = []
        failed = launched = 0
        while to_go > 0:
            batch = [study.ask(dict(space.distributions)) for _ in range(min(to_go, self.n_jobs))]
            for trial in batch:
                if extend is not None:
                    extend(config, trial)
                if settings.prunes:
                    trial_link.write(sweep_dir, trial.number, study, trial, str(self.storage))
            overrides = [optuna_space.trial_overrides(space, trial.params) for trial in batch]
            numbers = [t.number for t in batch]
            if numbers != list(range(numbers[0], numbers[0] + len(numbers))):  # another process asks too
                raise RuntimeError(f"study {study.study_name}: trials {numbers} are not consecutive")
            results = self.launcher.launch(overrides, initial_job_idx=numbers[0])
            for trial, result in zip(batch, results):
                state = optuna_study.tell(study, trial, result, settings)
                failed += state == optuna.trial.TrialState.FAIL
                trial_link.remove(sweep_dir, trial.number)
            returns.append(results)
            launched += len(batch)
            to_go -= len(batch)
            if failed / launched > self.max_failure_rate:
                print(
                    f"[tfrun] {failed} of {launched} trials failed, more than hydra.sweeper.max_failure_rate="
                    f"{self.max_failure_rate}: no more trials are launched",
                    flush=True,
                )
                break
        return returns

    def _custom_search_space(self) -> Any:
        """hydra.sweeper.custom_search_space: the user's `(cfg, trial)` function that suggests more parameters."""
        if not self.custom_search_space:
            return None
        from hydra.utils import get_method

        return get_method(self.custom_search_space)


def _refuse(message: str) -> None:
    sys.stderr.write(f"tfrun: {message} (nothing was run)\n")
    raise SystemExit(2)
