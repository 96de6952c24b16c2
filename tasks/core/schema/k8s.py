"""`job=k8s`: the keys of the Kubernetes manifests tfrun renders (and never applies), and their value rules.

What is rendered follows the rest of the config: `source=…` names a served model (Deployment, Service,
HorizontalPodAutoscaler, the monitoring ConfigMap); without a source, a `cluster=local` training config becomes one
Indexed Job per task type behind a headless Service (tfrun.tasks.k8s). Pure Python: checked before anything runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import Enum
from typing import Dict, Iterator, Optional

from tfrun.tasks.core.problems import Problem, at_least, between

SERVING_IMAGE = "tensorflow/serving:2.21.0"
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")  # RFC 1123 label: names, namespaces
# An image reference (the distribution/reference grammar): [registry[:port]/]path[:tag][@sha256:digest]
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_RE = re.compile(
    rf"(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?/)?"
    rf"{_COMPONENT}(?:/{_COMPONENT})*(?::[\w][\w.-]{{0,127}})?(?:@sha256:[a-f0-9]{{64}})?"
)
# A Kubernetes quantity: a decimal number, then a binary (Ki…Ei) or decimal (m, k, M…E) suffix or an exponent
QUANTITY_RE = re.compile(r"[+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:Ki|Mi|Gi|Ti|Pi|Ei|[mkMGTPE]|[eE][+-]?[0-9]+)?")
RESOURCE_NAME_RE = re.compile(r"(?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[a-z0-9]([-a-z0-9_.]*[a-z0-9])?")
MODEL_NAME_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class K8sServer(Enum):
    tfserving = "tfserving"  # tensorflow_model_server in TF Serving's image (reads gs:// itself)
    tfrun = "tfrun"  # tfrun-serve in tfrun's serving image (containers/serving): the model from a volume


class K8sServiceType(Enum):
    ClusterIP = "ClusterIP"
    NodePort = "NodePort"
    LoadBalancer = "LoadBalancer"


@dataclass
class K8sConfig:
    """job=k8s: manifests written to <run dir>/k8s/, validated offline; nothing is applied to a cluster."""

    name: Optional[str] = None  # resources' name (an RFC 1123 label); null = from model_name (tfrun-...)
    namespace: str = "default"
    image: Optional[str] = None  # null = tensorflow/serving:2.21.0 (k8s.server=tfserving); training: tfrun's image
    server: K8sServer = K8sServer.tfserving
    replicas: int = 2  # serving pods (the autoscaler's floor)
    max_replicas: int = 5  # the HorizontalPodAutoscaler's ceiling
    target_cpu_percent: int = 70  # the autoscaler's average CPU utilisation target (of k8s.requests.cpu)
    model_uri: Optional[str] = None  # gs://BUCKET/PATH/MODEL holding numbered versions; null = k8s.model_claim
    model_claim: str = "tfrun-models"  # PersistentVolumeClaim holding <model_name>/<version>/ (model_uri null)
    requests: Dict[str, str] = field(default_factory=lambda: {"cpu": "500m", "memory": "1Gi"})
    limits: Dict[str, str] = field(default_factory=lambda: {"cpu": "2", "memory": "2Gi"})
    metrics: bool = True  # TF Serving's Prometheus metrics (a monitoring ConfigMap) and prometheus.io annotations
    service_type: K8sServiceType = K8sServiceType.ClusterIP
    port: int = 2222  # training: each task's gRPC port in TF_CONFIG
    validate: bool = True  # check every manifest with kubernetes-validate (the k8s extra) when it is installed

    def problems(self) -> Iterator[Problem]:
        if self.name is not None and not DNS_LABEL.fullmatch(str(self.name)):
            yield Problem("k8s.name", self.name, "null or a lower-case RFC 1123 label (a-z, 0-9, '-'; <= 63)")
        if not DNS_LABEL.fullmatch(str(self.namespace)):
            yield Problem("k8s.namespace", self.namespace, "a lower-case RFC 1123 label, e.g. default")
        if self.image is not None and not (len(self.image) <= 255 and IMAGE_RE.fullmatch(self.image)):
            yield Problem(
                "k8s.image", self.image, "an image reference such as tensorflow/serving:2.21.0 or REGISTRY/PATH:TAG"
            )
        yield from between("k8s.replicas", self.replicas, 1, 1000, low_inclusive=True, high_inclusive=True)
        if isinstance(self.replicas, int) and self.replicas >= 1:
            yield from at_least("k8s.max_replicas", self.max_replicas, self.replicas)
        yield from between(
            "k8s.target_cpu_percent", self.target_cpu_percent, 1, 100, low_inclusive=True, high_inclusive=True
        )
        if self.model_uri is not None and not re.fullmatch(
            r"gs://[a-z0-9][a-z0-9._-]{1,220}(/[^\s]*)?", self.model_uri
        ):
            yield Problem("k8s.model_uri", self.model_uri, "null (a volume) or gs://BUCKET/PATH/MODEL_NAME")
        if self.model_uri is not None and self.server is K8sServer.tfrun:
            yield Problem(
                "k8s.model_uri",
                self.model_uri,
                "null with k8s.server=tfrun (tfrun-serve reads a local folder: the model comes from k8s.model_claim)",
            )
        if not DNS_LABEL.fullmatch(str(self.model_claim)):
            yield Problem("k8s.model_claim", self.model_claim, "a PersistentVolumeClaim's name (an RFC 1123 label)")
        for key in ("requests", "limits"):
            for resource, value in (getattr(self, key) or {}).items():
                if not RESOURCE_NAME_RE.fullmatch(str(resource)):
                    yield Problem(f"k8s.{key}", resource, "resource names such as cpu, memory or nvidia.com/gpu")
                if not QUANTITY_RE.fullmatch(str(value)):
                    yield Problem(f"k8s.{key}.{resource}", value, "a Kubernetes quantity such as 500m, 2, 1Gi or 512Mi")
        yield from between("k8s.port", self.port, 1, 65535, low_inclusive=True, high_inclusive=True)

    def serving_image(self) -> Optional[str]:
        """The serving pods' image: k8s.image, else TF Serving's (tfrun's image has no public default)."""
        return self.image or (SERVING_IMAGE if self.server is K8sServer.tfserving else None)


def model_name_problems(model_name: str) -> Iterator[Problem]:
    """A served model's name is a path segment in TF Serving's URLs and the pods' model folder."""
    if not MODEL_NAME_RE.fullmatch(model_name) or ".." in model_name:
        yield Problem(
            "model_name", model_name, "letters, digits, '_', '-' or '.', without '/' or '..' (a URL path segment)"
        )
