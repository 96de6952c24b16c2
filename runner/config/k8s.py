"""`job=k8s`: its source checked and its model name adopted before validation, and its rules on the rest of the config.

Runs in the runner, without TensorFlow. With `source=…` (job=deploy's forms) the manifests serve that model, under
its name unless the command line gives `model_name=…`; without one, the config must describe a training cluster
(`cluster=local` with a strategy that needs one: its layout is what the Indexed Jobs get).
"""

from __future__ import annotations

from typing import Any, Iterator

from omegaconf import DictConfig, open_dict

from tfrun.runner.config.deploy import _given
from tfrun.tasks.core import sources
from tfrun.tasks.core.problems import ConfigError, Problem
from tfrun.tasks.core.schema.k8s import K8sServer, model_name_problems
from tfrun.tasks.k8s.config import TRAINING_NAME_MAX

K8S = "k8s"
SOURCE_FORMS = "a run dir, its record.json, a SavedModel folder (models/NAME/0003) or MULTIRUN/best"


def prepare(cfg: DictConfig, overrides: list[str]) -> None:
    """For job=k8s with a source: check it (ConfigError naming the path or file) and adopt its model name."""
    job = cfg.get("job")
    given = cfg.get("source")
    if getattr(job, "value", job) != K8S or given is None:
        return
    try:
        source = sources.resolve(str(given))
        sources.check(source)
    except sources.SourceError as err:
        raise ConfigError([Problem("source", given, f"a model to render manifests for ({err})")]) from None
    if not _given(overrides, "model_name"):
        with open_dict(cfg):
            cfg.model_name = source.model_name


def problems(config: Any) -> Iterator[Problem]:
    """job=k8s's rules across groups: what it renders must be knowable from the config alone."""
    if config.job.value != K8S:
        return
    k8s, cluster, strategy = config.k8s, config.cluster, config.strategy
    if config.source is not None:
        yield from model_name_problems(str(config.model_name))
        if cluster.name != "none":
            yield Problem(
                "cluster",
                cluster.name,
                "none with job=k8s source=… (manifests to serve a model; a training config has no source)",
            )
        if "cpu" not in (k8s.requests or {}):
            yield Problem(
                "k8s.requests",
                dict(k8s.requests or {}),
                "a cpu request for serving (the autoscaler's CPU target is a share of it), e.g. {cpu: 500m, memory: 1Gi}",
            )
        if k8s.server is K8sServer.tfrun and k8s.image is None:
            yield Problem(
                "k8s.image",
                None,
                "tfrun's serving image (built from containers/serving/Dockerfile, pushed to a registry) when "
                "k8s.server=tfrun",
            )
        return
    if not cluster.local_processes or not strategy.needs_cluster:
        yield Problem(
            "source",
            None,
            f"{SOURCE_FORMS} to serve, or a training config to distribute: strategy=multi_worker or "
            f"parameter_server with cluster=local (its layout becomes the Kubernetes replicas; now strategy="
            f"{strategy.name}, cluster={cluster.name})",
        )
    if k8s.image is None:
        yield Problem(
            "k8s.image",
            None,
            "tfrun's training image with your project (containers/training/Dockerfile, pushed to a registry) "
            "for a training config",
        )
    if k8s.name is not None and len(str(k8s.name)) > TRAINING_NAME_MAX:
        yield Problem(
            "k8s.name",
            k8s.name,
            f"at most {TRAINING_NAME_MAX} characters for training (pods are named <name>-<type>-<index>)",
        )
