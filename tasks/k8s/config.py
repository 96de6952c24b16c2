"""What job=k8s renders, read from the run's config: a served model (`source=…`) or a training cluster.

The child's cfg is a plain DictConfig (enums as their names), the runner's a validated dataclass; both read the
same here. Pure Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Optional

from tfrun.tasks.core import sources, tf_config
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.core.schema.k8s import SERVING_IMAGE

GRPC_PORT = 8500  # TF Serving's ports inside the pod
REST_PORT = 8501
TRAINING_NAME_MAX = 40  # an Indexed Job's pod hostname is <name>-<type>-<index>: at most 63 characters
# Overrides a replica must not inherit: it runs one task of the cluster TF_CONFIG describes, and trains
REPLICA_DROPS = ("job", "k8s", "cluster", "source", "hydra")


def _value(node: Any) -> Any:
    """An enum's value (the runner's dataclass) or the plain value (the child's DictConfig)."""
    return getattr(node, "value", node)


def resource_name(text: str, limit: int = 63) -> str:
    """`text` as an RFC 1123 label: lower case, '-' for anything else, trimmed to `limit`."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return (name[:limit].rstrip("-") or "tfrun") if name else "tfrun"


@dataclass(frozen=True)
class ServingPlan:
    """A served model: TF Serving pods behind a Service, scaled on CPU."""

    name: str
    namespace: str
    model_name: str
    version: Optional[int]
    server: str  # tfserving | tfrun
    image: str
    replicas: int
    max_replicas: int
    target_cpu_percent: int
    model_uri: Optional[str]
    model_claim: str
    requests: dict[str, str]
    limits: dict[str, str]
    metrics: bool
    service_type: str
    source: dict[str, Any] = field(default_factory=dict)  # which model, from which run (annotations)

    @property
    def model_base_path(self) -> str:
        """Where the server finds the numbered versions: gs://… or the claim's folder."""
        return self.model_uri.rstrip("/") if self.model_uri else f"/models/{self.model_name}"


@dataclass(frozen=True)
class TrainingPlan:
    """A distributed training config: one Indexed Job per task type behind one headless Service."""

    name: str
    namespace: str
    image: str
    strategy: str
    counts: dict[str, int]  # task type -> replicas (tfrun.tasks.core.tf_config.task_counts, as cluster=local)
    port: int
    args: list[str]  # the plan-running tasks' `tfrun` arguments
    requests: dict[str, str]
    limits: dict[str, str]

    def host(self, kind: str, index: int) -> str:
        """Task kind:index's address: its pod's DNS name under the headless Service (an Indexed Job's hostname
        is <job name>-<completion index>)."""
        return f"{self.name}-{kind}-{index}.{self.name}.{self.namespace}.svc:{self.port}"

    def cluster(self) -> dict[str, list[str]]:
        """TF_CONFIG's cluster, in cluster=local's order of types."""
        return {kind: [self.host(kind, i) for i in range(n)] for kind, n in self.counts.items()}

    def runs_plan(self, kind: str) -> bool:
        return tf_config.runs_plan(option_class("strategy", self.strategy).chief_dispatches, kind)


def replica_args(overrides: list[str]) -> list[str]:
    """The `tfrun` arguments of a plan-running task: this run's overrides, less what only job=k8s uses, with the
    cluster from the environment's TF_CONFIG (cluster=tf_config)."""
    kept = [o for o in overrides if o.lstrip("+~").split("=", 1)[0].split(".", 1)[0] not in REPLICA_DROPS]
    return [*kept, "cluster=tf_config"]


def serving_plan(cfg: Any, source: Optional[sources.Source] = None) -> ServingPlan:
    k8s = cfg.k8s
    server = str(_value(k8s.server))
    model_name = str(cfg.model_name)
    version = None
    if source is not None:
        recorded = (source.artifact or {}).get("version")
        version = (
            int(recorded)
            if recorded is not None
            else (int(source.saved_model.name) if source.saved_model.name.isdigit() else None)
        )
    link = source.link(sources.check(source)) if source is not None else {}
    image = k8s.image or (SERVING_IMAGE if server == "tfserving" else "")
    return ServingPlan(
        name=str(k8s.name) if k8s.name else resource_name(model_name),
        namespace=str(k8s.namespace),
        model_name=model_name,
        version=version,
        server=server,
        image=str(image),
        replicas=int(k8s.replicas),
        max_replicas=int(k8s.max_replicas),
        target_cpu_percent=int(k8s.target_cpu_percent),
        model_uri=str(k8s.model_uri) if k8s.model_uri else None,
        model_claim=str(k8s.model_claim),
        requests={str(k): str(v) for k, v in dict(k8s.requests).items()},
        limits={str(k): str(v) for k, v in dict(k8s.limits).items()},
        metrics=bool(k8s.metrics),
        service_type=str(_value(k8s.service_type)),
        source=link,
    )


def training_plan(cfg: Any, overrides: list[str]) -> TrainingPlan:
    k8s, cluster = cfg.k8s, cfg.cluster
    strategy = str(cfg.strategy.name)
    default = resource_name(f"{cfg.model_name}-train", TRAINING_NAME_MAX)
    return TrainingPlan(
        name=str(k8s.name) if k8s.name else default,
        namespace=str(k8s.namespace),
        image=str(k8s.image),
        strategy=strategy,
        counts=tf_config.task_counts(
            option_class("strategy", strategy).chief_dispatches, int(cluster.workers), cluster.ps, bool(cluster.chief)
        ),
        port=int(k8s.port),
        args=replica_args(list(overrides)),
        requests={str(k): str(v) for k, v in dict(k8s.requests).items()},
        limits={str(k): str(v) for k, v in dict(k8s.limits).items()},
    )
