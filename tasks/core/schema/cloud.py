"""Structured configs for the `cloud` group and the Vertex AI targets (vertex_endpoint, vertex_batch).

Every rule here is pure Python (tfrun.tasks.core.vertex_catalog holds the tables), so a bad cloud config
stops with exit 2 before any SDK is imported or any request is sent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Dict, Iterator, List, Optional

from tfrun.tasks.core import vertex_catalog as catalog
from tfrun.tasks.core.problems import Problem, at_least, between
from tfrun.tasks.core.schema.targets import ParityOptions, TargetConfig

CREDENTIAL_MODES = ("adc", "anonymous")


def _endpoint_problem(key: str, value: Optional[str]) -> Iterator[Problem]:
    if value is not None and not (value.startswith("http://") or value.startswith("https://")):
        yield Problem(key, value, "null (Google's service) or a server URL such as http://127.0.0.1:8080")


# -------------------------------------------------------------------- cloud
@dataclass
class CloudConfig:
    name: str = "none"

    def problems(self) -> Iterator[Problem]:
        return iter(())

    @property
    def enabled(self) -> bool:
        return False


@dataclass
class NoCloud(CloudConfig):
    """No cloud: nothing leaves this machine."""


@dataclass
class GcpCloud(CloudConfig):
    """A Google Cloud project: GCS for models and data, Vertex AI for serving and jobs."""

    name: str = "gcp"
    project: Optional[str] = None
    region: str = "us-central1"
    bucket: Optional[str] = None
    prefix: str = "tfrun"  # objects go under gs://<bucket>/<prefix>/...
    credentials: str = "adc"  # adc | anonymous | path to a service-account JSON file
    api_endpoint: Optional[str] = None  # null = Vertex AI; http://HOST:PORT = a Vertex-compatible server (REST)
    storage_endpoint: Optional[str] = None  # null = GCS (or $STORAGE_EMULATOR_HOST); http://HOST:PORT = an emulator
    labels: Dict[str, str] = field(default_factory=dict)  # added to every resource this run creates
    dry_run: bool = False  # print the plan (every resource, machine, image, path) and stop
    upload_workers: int = 8  # parallel GCS transfers

    @property
    def enabled(self) -> bool:
        return True

    def problems(self) -> Iterator[Problem]:
        if not self.project:
            yield Problem("cloud.project", self.project, "your Google Cloud project id, e.g. cloud.project=my-project")
        elif not (
            6 <= len(self.project) <= 30
            and self.project[0].isalpha()
            and all(c.islower() or c.isdigit() or c == "-" for c in self.project)
        ):
            yield Problem(
                "cloud.project",
                self.project,
                "a project id: 6-30 lowercase letters, digits or '-', starting with a letter",
            )
        if not self.bucket:
            yield Problem(
                "cloud.bucket",
                self.bucket,
                "a Cloud Storage bucket name, e.g. cloud.bucket=my-models "
                "(created in cloud.region if it does not exist)",
            )
        else:
            why = catalog.bucket_problem(self.bucket)
            if why:
                yield Problem("cloud.bucket", self.bucket, why)
        if not catalog.REGION_RE.match(self.region or ""):
            yield Problem("cloud.region", self.region, "a region such as us-central1, europe-west4 or asia-east1")
        if not self.prefix or self.prefix.startswith("/") or self.prefix.endswith("/") or "//" in self.prefix:
            yield Problem(
                "cloud.prefix",
                self.prefix,
                "a folder path inside the bucket without leading or trailing '/', e.g. tfrun or team/tfrun",
            )
        if self.credentials not in CREDENTIAL_MODES and not os.path.isfile(os.path.expanduser(self.credentials)):
            yield Problem(
                "cloud.credentials",
                self.credentials,
                "adc (application default credentials), anonymous (emulators only) or the path of an "
                "existing service-account JSON file",
            )
        yield from _endpoint_problem("cloud.api_endpoint", self.api_endpoint)
        yield from _endpoint_problem("cloud.storage_endpoint", self.storage_endpoint)
        for key, value, allowed in catalog.label_problems(dict(self.labels)):
            yield Problem(f"cloud.labels.{key}", value, allowed)
        yield from between("cloud.upload_workers", self.upload_workers, 1, 64, low_inclusive=True, high_inclusive=True)


# ------------------------------------------------------------- vertex targets
class BatchMode(Enum):
    cloud = "cloud"  # a Vertex BatchPredictionJob
    local = "local"  # the same shards through the SavedModel on this machine (no cloud)


class InstancesFormat(Enum):
    jsonl = "jsonl"  # one JSON instance per line (what Vertex forwards as-is to the serving container)


VERTEX_ENDPOINT_STEPS = (
    "vertex_upload",
    "vertex_model",
    "vertex_deploy",
    "vertex_parity",
    "vertex_latency",
    "vertex_report",
)
VERTEX_BATCH_STEPS = (
    "vertex_upload",
    "vertex_model",
    "vertex_batch_input",
    "vertex_batch_job",
    "vertex_batch_read",
    "vertex_report",
)
LOCAL_BATCH_STEPS = ("vertex_batch_input", "vertex_batch_job", "vertex_batch_read", "vertex_report")


@dataclass
class VertexTarget(TargetConfig):
    """What both Vertex targets share: the uploaded Model and the machines that run it."""

    model_display_name: str = "${model_name}"
    # a Model with this display name and tfrun's labels exists: upload as its next version (false: a new Model)
    new_version: bool = True
    version_aliases: List[str] = field(default_factory=list)  # aliases of the uploaded version (moved if taken)
    default_version: bool = True  # the uploaded version takes the `default` alias (a new Model's first always does)
    serving_container: str = "prebuilt"  # prebuilt | tfrun | an image URI
    tfrun_image: Optional[str] = None  # serving_container=tfrun: the image you pushed (containers/serving/)
    machine_type: str = "n1-standard-2"
    accelerator_type: Optional[str] = None  # e.g. NVIDIA_TESLA_T4
    accelerator_count: int = 0
    max_replicas: int = 1
    teardown: bool = False  # remove what this run created once the checks are done
    timeout_s: float = 1800.0  # deadline for a deploy or a batch job
    poll_interval_s: float = 2.0  # how often a running batch job or operation is looked at

    kept_status = "kept"  # the deployment's status when target.teardown=false

    def _vertex_problems(self, min_key: str, min_replicas: int) -> Iterator[Problem]:
        if not self.model_display_name or len(self.model_display_name) > 128:
            yield Problem("target.model_display_name", self.model_display_name, "1-128 characters")
        for alias in self.version_aliases:
            why = catalog.version_alias_problem(alias)
            if why:
                yield Problem("target.version_aliases", alias, why)
        choice = self.serving_container
        if choice not in ("prebuilt", "tfrun") and ("/" not in choice or any(c.isspace() for c in choice)):
            yield Problem(
                "target.serving_container",
                choice,
                "prebuilt (Google's newest TensorFlow image), tfrun (this project's server, "
                "containers/serving/) or an image URI such as us-docker.pkg.dev/PROJECT/REPO/IMAGE:TAG",
            )
        if choice == "tfrun" and not self.tfrun_image:
            yield Problem(
                "target.tfrun_image",
                self.tfrun_image,
                "the URI of the tfrun-serving image you built and pushed when target.serving_container="
                "tfrun (containers/serving/README.md), e.g. us-central1-docker.pkg.dev/PROJECT/tfrun/"
                "tfrun-serving:0.1.0",
            )
        why = catalog.machine_problem(self.machine_type)
        if why:
            yield Problem("target.machine_type", self.machine_type, why)
        else:
            why = catalog.accelerator_problem(self.machine_type, self.accelerator_type, self.accelerator_count)
            if why:
                key = "target.accelerator_count" if self.accelerator_type else "target.accelerator_type"
                value = self.accelerator_count if self.accelerator_type else self.accelerator_type
                yield Problem(key, value, why)
        yield from at_least(min_key, min_replicas, 1)
        if self.max_replicas < min_replicas:
            yield Problem("target.max_replicas", self.max_replicas, f"a number >= {min_key} ({min_replicas})")
        if not self.timeout_s > 0:
            yield Problem("target.timeout_s", self.timeout_s, "a number of seconds > 0")
        yield from between("target.poll_interval_s", self.poll_interval_s, 0.0, 300.0, high_inclusive=True)

    def preflight_steps(self) -> list[str]:
        return ["vertex_preflight"] if self.cloud_steps else []

    @property
    def gpu(self) -> bool:
        return self.accelerator_type is not None

    @property
    def cloud_steps(self) -> bool:
        return True


@dataclass
class VertexEndpointTarget(ParityOptions, VertexTarget):
    """Model.upload -> endpoint create-or-reuse -> deploy -> parity and latency over Endpoint.predict."""

    name: str = "vertex_endpoint"
    steps: List[str] = field(default_factory=lambda: list(VERTEX_ENDPOINT_STEPS))
    endpoint: str = "${model_name}-endpoint"  # display name: reused when an endpoint has it, else created
    min_replicas: int = 1
    traffic_percentage: int = 100  # < 100 deploys a canary beside the models already on the endpoint
    max_payload_bytes: int = 1_500_000  # Vertex's online request limit: requests are chunked under it
    latency_requests: int = 50
    undeploy_previous: bool = False  # job=promote: undeploy the version promoted from (kept at 0 % for rollback)

    serves_online = True
    kept_status = "serving"

    def problems(self) -> Iterator[Problem]:
        yield from self._vertex_problems("target.min_replicas", self.min_replicas)
        if not self.endpoint or len(self.endpoint) > 128:
            yield Problem("target.endpoint", self.endpoint, "an endpoint display name of 1-128 characters")
        yield from between(
            "target.traffic_percentage", self.traffic_percentage, 1, 100, low_inclusive=True, high_inclusive=True
        )
        yield from self.parity_problems()
        yield from between(
            "target.max_payload_bytes", self.max_payload_bytes, 1024, 1_500_000, low_inclusive=True, high_inclusive=True
        )
        yield from between(
            "target.latency_requests", self.latency_requests, 1, 100_000, low_inclusive=True, high_inclusive=True
        )


@dataclass
class VertexBatchTarget(VertexTarget):
    """Holdout as instance shards on GCS -> Model.batch_predict -> results read back -> accuracy."""

    name: str = "vertex_batch"
    steps: List[str] = field(default_factory=lambda: list(VERTEX_BATCH_STEPS))
    mode: BatchMode = BatchMode.cloud
    instances_format: InstancesFormat = InstancesFormat.jsonl
    shards: int = 2  # instance files written (Vertex reads them in parallel)
    examples: Optional[int] = None  # holdout examples predicted; null = all
    starting_replicas: int = 1
    max_accuracy_delta: float = 0.0  # batch accuracy must equal the local model's (within this)
    timeout_s: float = 3600.0

    def problems(self) -> Iterator[Problem]:
        yield from self._vertex_problems("target.starting_replicas", self.starting_replicas)
        yield from between("target.shards", self.shards, 1, 1000, low_inclusive=True, high_inclusive=True)
        if self.examples is not None:
            yield from at_least("target.examples", self.examples, 1)
        yield from between(
            "target.max_accuracy_delta", self.max_accuracy_delta, 0.0, 1.0, low_inclusive=True, high_inclusive=True
        )

    def planned_steps(self) -> list[str]:
        """target.mode=local sends nothing to the cloud: no upload, no Vertex Model."""
        if self.mode is BatchMode.local:
            return [s for s in self.steps if s in LOCAL_BATCH_STEPS]
        return list(self.steps)

    @property
    def cloud_steps(self) -> bool:
        return self.mode is BatchMode.cloud


def cloud_problems(config: Any) -> Iterator[Problem]:
    """Rules across `cloud` and `target`."""
    target, cloud = config.target, config.cloud
    uses_cloud = isinstance(target, VertexTarget) and target.cloud_steps
    if uses_cloud and not cloud.enabled:
        how = (
            " (or target.mode=local to run the batch on this machine)" if isinstance(target, VertexBatchTarget) else ""
        )
        yield Problem(
            "cloud", cloud.name, f"gcp with target={target.name}: set cloud=gcp cloud.project=... cloud.bucket=...{how}"
        )
    if (
        uses_cloud
        and cloud.enabled
        and target.serving_container == "prebuilt"
        and catalog.REGION_RE.match(cloud.region or "")
    ):
        why = catalog.region_problem(cloud.region)
        if why:
            yield Problem("cloud.region", cloud.region, why)
    if cloud.enabled and cloud.dry_run and not uses_cloud and not config.cluster.on_vertex:
        yield Problem(
            "cloud.dry_run",
            cloud.dry_run,
            "false unless a cloud target (target=vertex_endpoint or vertex_batch) or cluster=vertex "
            "is chosen: there is no cloud plan to show",
        )
