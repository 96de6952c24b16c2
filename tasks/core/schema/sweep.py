"""Structured configs for the `sweep` group: the search a `tfrun -m` runs, and what its jobs need to know of it.

sweep=none (default) is Hydra's grid; sweep=optuna is tfrun's Optuna sweeper (tfrun.runner.sweeps.optuna_sweeper)
with an optional pruner that stops a trial's training at the end of an epoch when its per-epoch value is poor;
sweep=vertex is a Vertex AI tuning job. The sweeper's own keys (study, storage, trials, search space) stay under
`hydra.sweeper.*`; the pruner is here because the job itself reports to it and stops.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterator, Mapping, Optional

from omegaconf import MISSING

from tfrun.tasks.core.problems import Problem, at_least

# The per-epoch counterpart of each optimized metric a pruner may watch: what Keras logs at each epoch's end.
PER_EPOCH_METRIC = {
    "holdout_accuracy": "val_accuracy",
    "holdout_loss": "val_loss",
    "val_accuracy": "val_accuracy",
    "val_loss": "val_loss",
    "accuracy": "accuracy",
    "loss": "loss",
}


def epoch_value(metric: str, logs: Mapping[str, Any]) -> Optional[tuple[str, float]]:
    """(Keras log, value) of `metric`'s per-epoch counterpart (PER_EPOCH_METRIC) in an epoch's logs; a holdout metric
    in a job with no validation split (no val_ log) by its value on the training data. None when the epoch logged
    neither, or the metric has no counterpart. What a study is told each epoch: Optuna's pruner, Vertex's stopping."""
    counterpart = PER_EPOCH_METRIC.get(metric)
    if counterpart is None:
        return None
    keys = (counterpart, counterpart.removeprefix("val_")) if metric.startswith("holdout_") else (counterpart,)
    for key in keys:
        if isinstance(logs.get(key), (int, float)):
            return key, float(logs[key])
    return None


class Pruner(Enum):
    none = "none"  # every trial trains all its epochs
    median = "median"  # stop a trial whose value is worse than the median of earlier trials at the same epoch
    hyperband = "hyperband"  # Hyperband's brackets of successive halving
    successive_halving = "successive_halving"  # asynchronous successive halving (ASHA)


@dataclass
class SweepConfig:
    name: str = MISSING

    def problems(self) -> Iterator[Problem]:
        return iter(())


@dataclass
class NoSweep(SweepConfig):
    name: str = "none"


@dataclass
class VertexSweep(SweepConfig):
    name: str = "vertex"


@dataclass
class OptunaSweep(SweepConfig):
    """tfrun's Optuna sweeper; the pruner's knobs are Optuna's, counted in epochs."""

    name: str = "optuna"
    pruner: Pruner = Pruner.none  # none | median | hyperband | successive_halving
    n_startup_trials: int = 2  # median: trials that run to the end before any is pruned
    n_warmup_steps: int = 1  # median: epochs a trial always runs before it may be pruned
    min_resource: int = 1  # hyperband / successive_halving: epochs before the first rung
    max_resource: Optional[int] = None  # hyperband: epochs of a full trial (null: train.epochs)
    reduction_factor: int = 3  # hyperband / successive_halving: 1/reduction_factor of the trials go on at a rung

    def problems(self) -> Iterator[Problem]:
        yield from at_least("sweep.n_startup_trials", self.n_startup_trials, 0)
        yield from at_least("sweep.n_warmup_steps", self.n_warmup_steps, 0)
        yield from at_least("sweep.min_resource", self.min_resource, 1)
        yield from at_least("sweep.reduction_factor", self.reduction_factor, 2)
        if self.max_resource is not None and self.max_resource < self.min_resource:
            yield Problem(
                "sweep.max_resource",
                self.max_resource,
                f"null (train.epochs) or >= sweep.min_resource ({self.min_resource})",
            )


def defaults(name: str) -> dict[str, Any]:
    """The `sweep` node an option composes with its defaults, as a record holds it (`none` for an unknown name)."""
    options = {"none": NoSweep, "optuna": OptunaSweep, "vertex": VertexSweep}
    node = dataclasses.asdict(options.get(name, NoSweep)())
    return {k: v.value if isinstance(v, Enum) else v for k, v in node.items()}


def pruning_problems(sweep: SweepConfig, optimized_metric: str, single_process: bool) -> Iterator[Problem]:
    """A pruner needs a per-epoch value of the optimized metric, reported by one process."""
    pruner = getattr(sweep, "pruner", Pruner.none)
    if pruner is Pruner.none:
        return
    if optimized_metric not in PER_EPOCH_METRIC:
        known = ", ".join(f"{k} ({v})" for k, v in PER_EPOCH_METRIC.items())
        yield Problem(
            "sweep.pruner",
            pruner.value,
            f"sweep.pruner=none with optimized_metric={optimized_metric}, which has no per-epoch counterpart to "
            f"report to the pruner; metrics that have one (per-epoch value): {known}",
        )
    if not single_process:
        yield Problem(
            "sweep.pruner",
            pruner.value,
            "sweep.pruner=none for jobs of several processes (a cluster or Vertex AI): only one-process jobs "
            "report their epochs to the study",
        )
