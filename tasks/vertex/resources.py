"""The ledger of cloud resources a run touches: what it created, reused, removed or left.

Every entry is sent to the runner the moment it changes (a `cloud_resource` event), so the
record lists a resource even if the child is killed right after creating it; clean-up and
`tfrun-records cleanup` work from that list and remove only entries with `created: true`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Optional

from tfrun.tasks.core import vertex_catalog as catalog

# Removal order: what depends on a resource goes before it.
REMOVAL_ORDER = (
    "deployed_model",
    "batch_job",
    "custom_job",
    "tuning_job",
    "endpoint",
    "model_version",
    "model",
    "gcs_objects",
    "bucket",
)
# What keeping each kind costs: the why of every resource a run keeps (target.teardown=false), each its own.
KEPT_COST = {
    "deployed_model": "a deployed model is billed per replica-hour",
    "batch_job": "a finished batch job costs nothing; its results are stored objects",
    "custom_job": "a finished job costs nothing; its outputs are stored objects",
    "tuning_job": "a finished job costs nothing; its trials' outputs are stored objects",
    "endpoint": "an endpoint costs nothing while no model is deployed on it",
    "model": "a registered Vertex Model costs nothing; its files are stored objects",
    "model_version": "a Vertex Model version costs nothing; its files are stored objects",
    "gcs_objects": "Cloud Storage objects are billed while stored",
    "bucket": "a bucket costs only what it stores",
}
GCLOUD_JOB_GROUPS = {"custom_job": "custom-jobs", "tuning_job": "hp-tuning-jobs"}
# statuses of a resource that may still exist (and cost money); clean-up tries each again, `kept` too (a bucket
# kept for the user's files, an endpoint kept for another model: empty later, removed then)
ALIVE = ("created", "left", "failed_to_remove", "kept")


@dataclass
class Resource:
    kind: str  # one of REMOVAL_ORDER
    name: str  # full Vertex resource name, or a gs:// URI
    created: bool  # by this run: only these are ever removed
    status: str = "created"  # created | reused | removed | left (kept on purpose) | kept (not ours to remove now) | failed_to_remove
    why: str = ""
    display_name: str = ""
    console: str = ""
    remove_command: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def resource_id(self) -> str:
        return self.name.rstrip("/").rsplit("/", 1)[-1]


class Ledger:
    """This run's resources, reported to the record as they change."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], *, project: str, region: str, run_dir: str):
        self.emit = emit
        self.project = project
        self.region = region
        self.run_dir = run_dir
        self.items: list[Resource] = []

    def add(
        self,
        kind: str,
        name: str,
        *,
        created: bool,
        display_name: str = "",
        why: str = "",
        details: Optional[dict[str, Any]] = None,
    ) -> Resource:
        res = Resource(
            kind=kind,
            name=name,
            created=created,
            status="created" if created else "reused",
            why=why or ("created by this run" if created else "existed before this run: never touched"),
            display_name=display_name,
            details=dict(details or {}),
        )
        res.console, res.remove_command = links(res, self.project, self.region, self.run_dir)
        self.items.append(res)
        self.report(res)
        return res

    def set(self, res: Resource, status: str, why: str) -> None:
        res.status, res.why = status, why
        self.report(res)

    def report(self, res: Resource) -> None:
        self.emit({"event": "cloud_resource", "resource": asdict(res)})

    def ours(self) -> list[Resource]:
        return [r for r in self.items if r.created and r.status in ALIVE]


def links(res: Resource, project: str, region: str, run_dir: str) -> tuple[str, str]:
    """(console page, the command that removes it) for a resource."""
    where = f"--region={region} --project={project}"
    rid = res.resource_id
    if res.kind == "model":
        return (
            catalog.console_link("model", project=project, region=region, resource_id=rid),
            f"gcloud ai models delete {rid} {where}",
        )
    if res.kind == "model_version":  # name: projects/…/models/ID@VERSION
        return (
            catalog.console_link("model", project=project, region=region, resource_id=rid.split("@", 1)[0]),
            f"gcloud ai models delete-version {rid} {where}",
        )
    if res.kind == "endpoint":
        return (
            catalog.console_link("endpoint", project=project, region=region, resource_id=rid),
            f"gcloud ai endpoints delete {rid} {where}",
        )
    if res.kind == "deployed_model":
        endpoint_id = res.details.get("endpoint", "").rsplit("/", 1)[-1]
        return (
            catalog.console_link("endpoint", project=project, region=region, resource_id=endpoint_id),
            f"gcloud ai endpoints undeploy-model {endpoint_id} --deployed-model-id={rid} {where}",
        )
    if res.kind in GCLOUD_JOB_GROUPS:  # cancel first if it still runs: a finished job costs nothing
        group = GCLOUD_JOB_GROUPS[res.kind]
        return (
            catalog.console_link(res.kind, project=project, region=region, resource_id=rid),
            f"gcloud ai {group} cancel {rid} {where}; gcloud ai {group} delete {rid} {where}",
        )
    if res.kind == "batch_job":
        # gcloud has no batch-prediction-jobs group: the REST call (cancel first if it still runs)
        return (
            catalog.console_link("batch_job", project=project, region=region, resource_id=rid),
            f'curl -X DELETE -H "Authorization: Bearer $(gcloud auth print-access-token)" '
            f"https://{region}-aiplatform.googleapis.com/v1/{res.name}",
        )
    if res.kind == "bucket":
        bucket = res.name.removeprefix("gs://").rstrip("/")
        return (
            catalog.console_link("bucket", project=project, region=region, resource_id=bucket),
            f"gcloud storage buckets delete gs://{bucket}",
        )
    bucket_path = res.name.removeprefix("gs://").rstrip("/")
    return (
        catalog.console_link("bucket", project=project, region=region, resource_id=bucket_path),
        f"gcloud storage rm --recursive {res.name.rstrip('/')}/",
    )
