"""The study of tfrun's Optuna sweeper: opened (or continued), checked, and told how each job ended.

A restarted sweep with a persistent `storage` continues its study: trials a killed sweep left RUNNING are marked
FAIL, `n_trials` counts the trials finished before, and job numbers are trial numbers, so new jobs come after the
existing ones. A study is continued only with the settings it was made with (tfrun.runner.sweeps.study_settings).
A storage written by Optuna 2 (hydra-optuna-sweeper's) is refused with the one command that upgrades it.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from omegaconf import DictConfig, OmegaConf

from tfrun.runner.sweeps import study_settings


@dataclass
class Settings:
    """What the sweeper needs of the job config: the pruner (None: none) and the value the jobs report."""

    sweep: Any  # tfrun.tasks.core.schema.sweep.OptunaSweep, or another sweep option's dataclass
    epochs: int
    monitor: Optional[str]  # the per-epoch metric the pruner watches

    @classmethod
    def of(cls, config: DictConfig, directions: list[str]) -> "Settings":
        """The sweep node, checked: a pruner mistake is exit 2, before any job."""
        from tfrun.tasks.core.problems import Problem
        from tfrun.tasks.core.schema import option_class
        from tfrun.tasks.core.schema.sweep import PER_EPOCH_METRIC, Pruner, pruning_problems

        sweep = OmegaConf.to_object(config.sweep) if config.get("sweep") is not None else None
        metric = str(config.get("optimized_metric", "holdout_accuracy"))
        pruner = getattr(sweep, "pruner", Pruner.none)
        cluster = option_class("cluster", config.get("cluster"))
        problems = list(sweep.problems()) if sweep is not None else []
        problems += pruning_problems(sweep, metric, not cluster.local_processes and not cluster.on_vertex)
        if pruner is not Pruner.none and metric in PER_EPOCH_METRIC and PER_EPOCH_METRIC[metric].startswith("val_"):
            fraction = (config.get("data") or {}).get("validation_fraction", 0.1)
            if fraction is not None and float(fraction) <= 0:
                problems.append(
                    Problem(
                        "data.validation_fraction",
                        fraction,
                        f"> 0 when sweep.pruner={pruner.value} watches {PER_EPOCH_METRIC[metric]} "
                        f"(optimized_metric={metric}), or an optimized_metric without val_: accuracy, loss",
                    )
                )
        if pruner is not Pruner.none and len(directions) > 1:
            problems.append(
                Problem(
                    "sweep.pruner", pruner.value, "sweep.pruner=none with several objectives (hydra.sweeper.direction)"
                )
            )
        if problems:
            from tfrun.runner.job import CONFIG_ERROR_EXIT, report_config_error
            from tfrun.tasks.core.problems import ConfigError

            report_config_error(ConfigError(problems), "invalid sweep configuration (nothing was launched)")
            raise SystemExit(CONFIG_ERROR_EXIT)
        monitor = PER_EPOCH_METRIC[metric] if pruner is not Pruner.none else None
        return cls(sweep, int(config.train.epochs), monitor)

    @property
    def prunes(self) -> bool:
        return self.monitor is not None


def open_study(
    config: DictConfig,
    name: Optional[str],
    storage: Optional[str],
    directions: list[str],
    sampler: Any,
    settings: Settings,
) -> Any:
    """The study, created or loaded; its settings checked (exit 2 when they differ); a killed sweep's RUNNING
    trials marked FAIL."""
    import optuna

    from tfrun.tasks.pruning import build_pruner

    if storage and str(storage).startswith("sqlite:///"):
        Path(str(storage).removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    pruner = build_pruner(settings.sweep, settings.epochs) if settings.prunes else optuna.pruners.NopPruner()
    try:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            sampler=sampler,
            pruner=pruner,
            directions=directions,
            load_if_exists=True,
        )
    except RuntimeError as err:
        if "storage upgrade" not in str(err):
            raise
        sys.stderr.write(
            f"tfrun: the Optuna storage {storage} was written by an older Optuna (hydra-optuna-sweeper's 2.x): "
            f"upgrade it once with `optuna storage upgrade --storage {storage}`, or move it aside "
            "(nothing was run)\n"
        )
        raise SystemExit(2) from None
    study_settings.check(study, config)  # exit 2 when it was made with other settings
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # its sweep was killed
    return study


def finished_trials(study: Any) -> int:
    import optuna

    states = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return len(study.get_trials(deepcopy=False, states=states))


def tell(study: Any, trial: Any, result: Any, settings: Settings) -> Any:
    """Tell the study how the job ended, as its record says; the state told."""
    from hydra.core.utils import JobStatus
    from optuna.trial import TrialState

    status = _record_status(result)
    value = None
    if result.status == JobStatus.COMPLETED and status == "succeeded":
        try:
            value = float(result.return_value)
        except (TypeError, ValueError):
            value = None
    if status == "pruned":
        _told(study, trial, state=TrialState.PRUNED)
        return TrialState.PRUNED
    if value is None or math.isnan(value) or len(study.directions) != 1:
        _told(study, trial, state=TrialState.FAIL)
        return TrialState.FAIL
    _told(study, trial, value)
    return TrialState.COMPLETE


def _told(study: Any, *args: Any, **kwargs: Any) -> None:
    """study.tell; the grid sampler's `study.stop()` once its grid is done is meant for study.optimize and raises
    outside it, after the trial's state was stored: the sweeper stops by n_trials (at most the grid's size)."""
    try:
        study.tell(*args, **kwargs)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise


def _record_status(result: Any) -> Optional[str]:
    from tfrun.runner.records.record import RECORD_NAME, load

    output_dir = OmegaConf.select(result.hydra_cfg or {}, "hydra.runtime.output_dir")  # the job's run dir
    if not output_dir:
        return None
    path = Path(str(output_dir)) / RECORD_NAME
    try:
        return load(path).get("status")
    except (OSError, ValueError):
        return None
