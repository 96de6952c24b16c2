"""Structured configs for the `track` group: where runs are also shown (the record stays the source of truth).

track=none (default) logs nowhere else; track=mlflow logs each run (and a multirun as a parent run with one
child per job) to an MLflow tracking store: a local one in the project folder by default (`mlflow ui` opens
it as it is), or any tracking server; with track.register=true each export also becomes a version in MLflow's
model registry (tfrun.tasks.registry). MLflow is an optional extra: these checks only look for it.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from typing import Iterator, Optional

from omegaconf import MISSING

from tfrun.tasks.core.problems import Problem, at_least

LOCAL_STORE = "sqlite:///mlflow.db"  # MLflow 3's own default: `mlflow ui` in the same folder opens it
URI = re.compile(r"^(https?://[^\s/]+(/\S*)?|sqlite:///\S+|file:\S+|databricks(://\S*)?)$")


@dataclass
class TrackConfig:
    name: str = MISSING
    register: bool = False  # true: each export a version of the registered model `model_name` (track=mlflow only)
    logs_to_mlflow = False  # what the option is (a class attribute, not a config key)

    def problems(self) -> Iterator[Problem]:
        return iter(())


@dataclass
class NoTrack(TrackConfig):
    name: str = "none"

    def problems(self) -> Iterator[Problem]:
        if self.register:
            yield Problem(
                "track.register",
                True,
                "false unless track=mlflow (the versions are MLflow's registry's): add track=mlflow [track.uri=…]",
            )


@dataclass
class MlflowTrack(TrackConfig):
    """MLflow tracking: params, per-epoch and final metrics, tags and artifacts of every run, from its record."""

    name: str = "mlflow"
    logs_to_mlflow = True
    uri: Optional[str] = None  # null = sqlite:///mlflow.db here; http(s)://host:port for a tracking server
    experiment: str = "tfrun"  # the MLflow experiment (created if missing)
    required: bool = False  # true: an unreachable server stops the run before training (exit 2)
    timeout_s: float = 5.0  # how long the reachability check and each request may take

    @property
    def tracking_uri(self) -> str:
        return self.uri or LOCAL_STORE

    def problems(self) -> Iterator[Problem]:
        if not _installed("mlflow"):
            yield Problem(
                "track",
                "mlflow",
                "the mlflow extra installed: pip install 'tfrun[mlflow]' (scripts/env.sh mlflow), or track=none",
            )
        if self.uri is not None and not URI.match(self.uri):
            yield Problem(
                "track.uri",
                self.uri,
                "null (a local store, sqlite:///mlflow.db), http(s)://HOST[:PORT] "
                "of a tracking server, sqlite:///PATH or file:PATH",
            )
        if not self.experiment:
            yield Problem("track.experiment", self.experiment, "an experiment name, e.g. tfrun")
        yield from at_least("track.timeout_s", self.timeout_s, 0.1)


def _installed(name: str) -> bool:
    """Whether `name` can be imported, found without importing it."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
