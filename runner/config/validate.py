"""Whole-config validation in pure Python, before any expensive step.

Per-group value rules live on the schema classes (`problems()`); the rules
here span groups. Everything is collected so one run reports every problem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from omegaconf import DictConfig, OmegaConf

from tfrun.runner import tracking
from tfrun.runner.config import data_shape, deploy, job_inputs, k8s, unknown_keys, user_nodes
from tfrun.runner.steps import STEPS
from tfrun.tasks.core.problems import ConfigError, Problem
from tfrun.tasks.core.schema import Config, FilesData, cloud_problems, cross_problems, vertex_training_problems

KNOWN_METRICS = ("holdout_accuracy", "holdout_loss", "val_accuracy", "val_loss", "accuracy", "loss")


def cross_group_problems(config: Config) -> Iterator[Problem]:
    """Rules that involve more than one config group."""
    if config.model.needs_images and config.data.name == "files" and not config.data.image_shape:
        yield Problem(
            "data.image_shape",
            config.data.image_shape,
            f"[height, width] or [height, width, channels] when model={config.model.name} "
            "(a convolutional model needs images; flat files data has no image shape)",
        )
    yield from deploy.problems(config)
    yield from k8s.problems(config)  # job=k8s: a source to serve or a cluster to describe
    yield from tracking.problems(config)  # track.register=true: a job that exports
    yield from job_inputs.problems(config)
    if config.job.value == "serve":  # the server kind job=serve would start (any job validates serve's keys)
        yield from config.serve.server_problems("serve")
    if hasattr(config.target, "label_problems"):  # target=tfserving's version labels name versions on disk
        yield from config.target.label_problems(Path(config.target.base_path) / config.model_name)
    for step in config.target.steps:
        if step not in STEPS:
            yield Problem("target.steps", step, "step names from: " + ", ".join(sorted(STEPS)))
    if config.optimized_metric not in KNOWN_METRICS:
        yield Problem("optimized_metric", config.optimized_metric, "one of " + ", ".join(KNOWN_METRICS))
    elif config.optimized_metric.startswith("val_") and (
        config.data.validation_fraction <= 0 or not config.strategy.validates
    ):
        yield Problem(
            "optimized_metric",
            config.optimized_metric,
            "a metric this run records: val_* needs data.validation_fraction > 0 and a strategy "
            "that validates (not parameter_server); holdout_accuracy always exists",
        )
    if not config.model_name or "/" in config.model_name or config.model_name.startswith("."):
        yield Problem("model_name", config.model_name, "a folder name without '/' that does not start with '.'")
    if (
        config.train.callbacks.early_stopping.enabled
        and config.train.callbacks.early_stopping.monitor.startswith("val_")
        and config.data.validation_fraction <= 0
    ):
        yield Problem(
            "data.validation_fraction",
            config.data.validation_fraction,
            f"a number > 0 when early stopping monitors {config.train.callbacks.early_stopping.monitor}",
        )


def data_file_problems(data: FilesData) -> list[Problem]:
    """A readable data=files file's contents (labels, arrays), read with numpy and csv, never TensorFlow."""
    from tfrun.tasks.core import datafiles
    from tfrun.tasks.data import file_check  # numpy: imported only for data=files

    fmt = datafiles.files_format(data.path, data.format.value) or ""
    return list(file_check.problems(data.path, fmt, data.x_key, data.y_key, data.label_column))


def validate(
    cfg: DictConfig,
    multirun: bool = False,
    user_config_dirs: tuple[str, ...] | list[str] = (),
    searchpath_dirs: tuple[str, ...] | list[str] = (),
) -> Config:
    """Return the typed config, or raise ConfigError naming every bad value."""
    user_nodes.complete(cfg)  # a user's model/data node: default name and split keys
    try:
        config: Config = OmegaConf.to_object(cfg)  # type: ignore[assignment]
    except Exception as exc:  # a MISSING mandatory value, an interpolation that fails
        key = getattr(exc, "full_key", None) or "config"
        raise ConfigError([Problem(str(key), "???", f"a value ({exc.__class__.__name__}: {exc})")]) from None
    user_nodes.adopt(config)
    problems = list(unknown_keys.problems(cfg)) + [p for group in config.groups() for p in group.problems()]
    problems += list(user_nodes.callback_problems(config.train.extra_callbacks))
    problems += list(user_nodes.retargeted_problems(config))
    problems += list(cross_group_problems(config)) + list(cross_problems(config)) + list(cloud_problems(config))
    problems += list(vertex_training_problems(config, multirun))
    if isinstance(config.data, FilesData) and not any(p.key.startswith("data.") for p in problems):
        problems += list(data_file_problems(config.data))
    if not any(p.key.startswith("data.") for p in problems):  # the data's known shape, once the data is valid
        problems += list(data_shape.problems(config))
    if config.cluster.on_vertex and not problems:  # walks the project: only for an otherwise valid config
        from tfrun.tasks.vertex.staging_rules import staging_problems

        problems += list(staging_problems(config, list(user_config_dirs)))
        problems += [
            Problem(
                "hydra.searchpath",
                f"file://{d}",
                "--config-dir with cluster=vertex (the job stages --config-dir folders, not hydra.searchpath entries)",
            )
            for d in searchpath_dirs
        ]
    if problems:
        raise ConfigError(problems)
    return config
