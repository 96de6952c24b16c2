"""Inside a Vertex AI tuning trial: every epoch's estimate of optimized_metric reported to the tuning service.

The study's automated stopping (`tuning.early_stopping`) judges a trial by its intermediate measurements, so the
chief reports one per epoch with cloudml-hypertune (the metric's per-epoch counterpart, as the Optuna pruner's:
tfrun.tasks.core.schema.sweep.epoch_value), the epoch (1, 2, ...) as its step; the holdout value at the end
(`tfrun.tasks.vertex.replica`) is the last report, at step `train.epochs`. cloudml-hypertune rewrites its metric
file from the reports of one `HyperTune` object, so both go through the one `reporter()` of the process.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from tfrun.tasks import cluster
from tfrun.tasks.core.schema.sweep import epoch_value


@functools.lru_cache(maxsize=1)
def reporter() -> Any:
    """The process's one cloudml-hypertune reporter (a second one would overwrite the first one's reports)."""
    import hypertune

    return hypertune.HyperTune()


def metric_tag(cfg: Any) -> str:
    """The study's metric id: Vertex names it in CLOUD_ML_HP_METRIC_TAG, tfrun's optimized_metric otherwise."""
    return os.environ.get("CLOUD_ML_HP_METRIC_TAG") or str(cfg.optimized_metric)


def epoch_report_callback(keras: Any, cfg: Any) -> Any:
    """A Keras callback reporting each epoch's estimate of optimized_metric (the chief's only: one trial, one
    series of measurements)."""
    chief = cluster.is_chief()
    tag = metric_tag(cfg)
    metric = str(cfg.optimized_metric)

    class EpochReports(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            found = epoch_value(metric, logs or {})
            if chief and found is not None:
                reporter().report_hyperparameter_tuning_metric(
                    hyperparameter_metric_tag=tag, metric_value=found[1], global_step=epoch + 1
                )

    return EpochReports()
