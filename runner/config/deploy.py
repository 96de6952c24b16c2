"""`job=deploy source=…`: the source checked, and its run's data config and model name adopted, before validation.

Runs in the runner, without TensorFlow: the source must exist, be a SavedModel and, where its run's record
lists the export's files, hold exactly those bytes (tfrun.tasks.core.sources). A `models:/…` source is first
brought here from MLflow's registry (tfrun.tasks.registry), with its run's record, and deployed from there. The deploy then uses the
source run's data config (its holdout rows are the parity check's) and model name unless the command line
gives `data=…` / `model_name=…`; a SavedModel without a record needs `data=…`.
"""

from __future__ import annotations

from typing import Any, Iterator

from omegaconf import DictConfig, OmegaConf, open_dict

from tfrun.runner.config import promote
from tfrun.tasks.core import sources
from tfrun.tasks.core.problems import ConfigError, Problem
from tfrun.tasks.core.schema import SCHEMAS
from tfrun.tasks.registry import config as registry_config

DEPLOY = "deploy"


def _given(overrides: list[str], key: str) -> bool:
    """Whether the command line sets `key` or a key under it (data=mnist, data.limit=100, +data.x=1)."""
    return any(o.lstrip("+~").split("=", 1)[0].split(".", 1)[0].split("@", 1)[0] == key for o in overrides)


def _data_node(recorded: dict[str, Any]) -> DictConfig:
    """The source run's data config, typed by its option's schema when it is a built-in option."""
    schema = SCHEMAS["data"].get(str(recorded.get("name")))
    if schema is not None and recorded.get("_target_") == getattr(schema, "_target_", None):
        return OmegaConf.merge(OmegaConf.structured(schema), recorded)  # type: ignore[return-value]
    return OmegaConf.create(recorded)


def prepare(cfg: DictConfig, overrides: list[str]) -> None:
    """For job=deploy: check the source (ConfigError naming the path or file) and adopt its data and name."""
    job = cfg.get("job")
    if getattr(job, "value", job) != DEPLOY:  # the composed config holds the Job enum (a plain str in a test's)
        return
    given = cfg.get("source")
    if registry_config.is_reference(given):
        _bring_here(cfg, str(given))
    try:
        source = sources.resolve(str(cfg.get("source") or ""))
        sources.check(source)
    except sources.SourceError as err:
        raise ConfigError([Problem("source", given, f"a model to deploy ({err})")]) from None
    recorded = source.data_config
    with open_dict(cfg):
        if not _given(overrides, "data"):
            if recorded is None:
                raise ConfigError(
                    [
                        Problem(
                            "data",
                            None,
                            f"data=… on the command line: the SavedModel {source.saved_model} has no run record "
                            "to take its data config from (its holdout rows are the parity check's)",
                        )
                    ]
                )
            cfg.data = _data_node(recorded)
        if not _given(overrides, "model_name"):
            cfg.model_name = source.model_name


def _bring_here(cfg: DictConfig, given: str) -> None:
    """A `models:/…` source: the version it names brought into the launch folder with its run's record, and
    deployed from there (the folder's registry.json keeps the reference as given and the version it resolved to)."""
    from tfrun.tasks.registry import client, steps

    try:
        folder = steps.materialise(given.strip(), cfg.get("track"))
    except client.RegistryError as err:
        raise ConfigError([Problem("source", given, f"a registered model version to deploy ({err})")]) from None
    with open_dict(cfg):
        cfg.source = folder.as_posix()


def problems(config: Any) -> Iterator[Problem]:
    """The rules of the jobs that read `source`: job=deploy (one machine, a target that deploys a SavedModel)
    and job=promote (tfrun.runner.config.promote)."""
    yield from promote.problems(config)
    if config.job.value != DEPLOY:
        if config.source is not None and config.job.value not in (promote.PROMOTE, "k8s"):
            yield Problem(
                "source",
                config.source,
                f"null unless job=deploy, job=promote or job=k8s (job={config.job.value} reads no source)",
            )
        return
    if config.cluster.on_vertex or config.cluster.local_processes:
        yield Problem("cluster", config.cluster.name, "none with job=deploy (a deploy trains nothing)")
    if not config.target.deploys:
        yield Problem("target", config.target.name, "a target that deploys with job=deploy: " + _deploying())
    if getattr(getattr(config.target, "source", None), "value", None) == "keras":
        yield Problem(
            "target.source", "keras", "saved_model with job=deploy (there is no Keras model, only the SavedModel)"
        )


def _deploying() -> str:
    return ", ".join(sorted(name for name, kind in SCHEMAS["target"].items() if kind.deploys))
