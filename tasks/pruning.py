"""A trial of tfrun's Optuna sweeper inside its job: each epoch's value reported to the study, and the stop.

The sweeper links the job to its trial through TRIAL_ENV (storage, study, trial; tfrun.runner.sweeps.trial_link).
Without it — a plain run, a grid, a rerun of a pruned trial — there is no callback and nothing of Optuna is
imported. With it, the callback reports the optimized metric's per-epoch counterpart (PER_EPOCH_METRIC) at each
epoch's end and, when the study's pruner says so, stops training there; the train step then tells the runner, the
plan ends after it (no evaluation, export or target step) and the record ends `pruned`.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

from tfrun.tasks.core.schema.sweep import PER_EPOCH_METRIC

TRIAL_ENV = "TFRUN_OPTUNA_TRIAL"


def build_pruner(sweep: Any, epochs: int) -> Any:
    """Optuna's pruner for the sweep node (a dataclass or a child's DictConfig), its steps counted in epochs."""
    import optuna

    kind = getattr(sweep.pruner, "value", sweep.pruner)
    if kind == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=int(sweep.n_startup_trials), n_warmup_steps=int(sweep.n_warmup_steps)
        )
    if kind == "hyperband":
        return optuna.pruners.HyperbandPruner(
            min_resource=int(sweep.min_resource),
            max_resource=int(sweep.max_resource or epochs),
            reduction_factor=int(sweep.reduction_factor),
        )
    if kind == "successive_halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=int(sweep.min_resource), reduction_factor=int(sweep.reduction_factor)
        )
    return optuna.pruners.NopPruner()


def link() -> Optional[dict[str, Any]]:
    """This job's trial (storage, study_name, trial_number, trial_id), when it is a pruned sweep's trial."""
    raw = os.environ.get(TRIAL_ENV)
    return json.loads(raw) if raw else None


def callback(keras: Any, cfg: Any) -> Any:
    """The Keras callback that reports to and obeys the trial; None when this job is no trial."""
    trial_link = link()
    if trial_link is None:
        return None
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs = int(cfg.train.epochs)
    study = optuna.load_study(
        study_name=trial_link["study_name"],
        storage=trial_link["storage"],
        pruner=build_pruner(cfg.sweep, epochs),
    )
    trial = optuna.trial.Trial(study, int(trial_link["trial_id"]))
    monitor = PER_EPOCH_METRIC[str(cfg.optimized_metric)]

    class ReportToTrial(keras.callbacks.Callback):
        """Report `monitor` at each epoch's end (step = epochs done); stop there when the pruner says so."""

        def __init__(self) -> None:
            super().__init__()
            self.reported: list[float] = []
            self.pruned: Optional[dict[str, Any]] = None

        def on_epoch_end(self, epoch: int, logs: Optional[dict[str, float]] = None) -> None:
            value = (logs or {}).get(monitor)
            if value is None:
                raise KeyError(f"the pruner watches {monitor}, which epoch {epoch + 1} did not log")
            value = float(value)
            trial.report(value, epoch + 1)
            self.reported.append(value)
            if epoch + 1 < epochs and trial.should_prune():  # after the last epoch, stopping saves nothing
                self.model.stop_training = True
                self.pruned = {
                    "epoch": epoch + 1,
                    "of_epochs": epochs,
                    "monitor": monitor,
                    "value": value,
                    "reported": list(self.reported),
                    "pruner": str(getattr(cfg.sweep.pruner, "value", cfg.sweep.pruner)),
                    "study": trial_link["study_name"],
                    "trial": int(trial_link["trial_number"]),
                }

    return ReportToTrial()
