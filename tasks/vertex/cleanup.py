"""Remove the cloud resources a run created — and nothing else.

Used by `target.teardown=true`, by the runner after a failed, killed or interrupted run, and
by `tfrun-records cleanup`. Only ledger entries with `created: true` that may still exist are
touched; resources found by the run's `tfrun-run-id` label but missing from the ledger (a
create whose answer never arrived) are added first. Each entry ends `removed`, `left` (with
why) or `failed_to_remove` (with the error and the command that removes it by hand).

    python -m tasks.vertex.cleanup < {"cloud": {...}, "run_id": ..., "resources": [...], "reason": ...}
prints the updated resources as JSON: how the runner, which imports no SDK, cleans up.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any, Callable, Optional

from tasks import gcs
from tasks.vertex import catalog, client
from tasks.vertex.resources import ALIVE, REMOVAL_ORDER, Resource, links

Report = Callable[[Resource], None]


def _remaining_split(endpoint: Any, deployed_id: str, before: dict[str, int]) -> Optional[dict[str, int]]:
    """The traffic split to leave behind when our deployed model goes (None: let Vertex drop it)."""
    current = {k: int(v) for k, v in dict(endpoint.traffic_split or {}).items()}
    others = [m.id for m in endpoint.list_models() if m.id != deployed_id]
    if not others or not current.get(deployed_id):
        return None
    restored = {k: v for k, v in before.items() if k in others and v}
    if sum(restored.values()) == 100:
        return restored
    shares = {k: current.get(k, 0) for k in others}
    total = sum(shares.values())
    if total == 0:  # everything went to ours: give it all to the first remaining model
        return {others[0]: 100}
    split = {k: v * 100 // total for k, v in shares.items()}
    split[others[0]] += 100 - sum(split.values())
    return split


def _remove_one(res: Resource, aiplatform: Any, storage: Any) -> tuple[str, str]:
    """Remove one resource; (status, why)."""
    if res.kind == "deployed_model":
        endpoint = aiplatform.Endpoint(res.details["endpoint"])
        if res.resource_id not in {m.id for m in endpoint.list_models()}:
            return "removed", "no longer deployed"
        split = _remaining_split(endpoint, res.resource_id, dict(res.details.get("traffic_before") or {}))
        endpoint.undeploy(deployed_model_id=res.resource_id, traffic_split=split)
        return "removed", "undeployed" + (f"; traffic back to {split}" if split else "")
    if res.kind == "endpoint":
        endpoint = aiplatform.Endpoint(res.name)
        if endpoint.list_models():
            return "left", ("another model is deployed on it now (not this run's): left in place; "
                            "undeploy it first to delete the endpoint")
        endpoint.delete()
        return "removed", "deleted"
    if res.kind == "batch_job":
        job = aiplatform.BatchPredictionJob(res.name)
        if job.state.name in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING", "JOB_STATE_QUEUED"):
            job.cancel()
        job.delete()
        return "removed", "cancelled if running, then deleted"
    if res.kind == "model":
        aiplatform.Model(res.name).delete()
        return "removed", "deleted"
    if res.kind == "gcs_objects":
        n = gcs.delete_prefix(storage, res.name)
        return "removed", f"{n} object(s) deleted"
    if res.kind == "bucket":
        name = res.name.removeprefix("gs://").rstrip("/")
        if gcs.delete_bucket_if_empty(storage, name):
            return "removed", "deleted (it was empty)"
        return "left", "holds objects this run did not write: left in place"
    raise ValueError(f"unknown resource kind {res.kind!r}")


def _labelled(aiplatform: Any, run_label: str) -> list[tuple[str, str, str]]:
    """(kind, name, display name) of Vertex resources carrying this run's label."""
    found = []
    query = f'labels.tfrun-run-id="{run_label}"'
    for kind, cls in (("model", aiplatform.Model), ("endpoint", aiplatform.Endpoint),
                      ("batch_job", aiplatform.BatchPredictionJob)):
        for item in cls.list(filter=query):
            found.append((kind, item.resource_name, item.display_name))
    return found


def remove(resources: list[Resource], cloud: Any, *, run_id: str, reason: str, report: Report,
           project: str, region: str, run_dir: str) -> list[Resource]:
    """Remove this run's live resources (labelled orphans included), in dependency order."""
    aiplatform = client.init(cloud)
    storage = gcs.storage_client(cloud)
    known = {r.name for r in resources}
    try:
        for kind, name, display in _labelled(aiplatform, catalog.label_value(run_id)):
            if name not in known:
                res = Resource(kind=kind, name=name, created=True, display_name=display,
                               why="found by this run's tfrun-run-id label (not in the ledger)")
                res.console, res.remove_command = links(res, project, region, run_dir)
                resources.append(res)
                report(res)
    except Exception as err:  # noqa: BLE001 - the ledger is still cleaned up
        print(f"[tfrun] could not list resources by label: {client.short_error(err)}", file=sys.stderr)
    todo = sorted((r for r in resources if r.created and r.status in ALIVE), key=lambda r: REMOVAL_ORDER.index(r.kind))
    for res in todo:
        try:
            status, why = _remove_one(res, aiplatform, storage)
        except Exception as err:  # noqa: BLE001 - record it and go on with the rest
            status, why = "failed_to_remove", f"{client.short_error(err)}; remove it with: {res.remove_command}"
        res.status, res.why = status, f"{reason}: {why}"
        report(res)
    return resources


def _namespace(value: Any) -> Any:
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _namespace(v) if k != "labels" else v for k, v in value.items()})
    return value


def main() -> int:
    job = json.load(sys.stdin)
    result, sys.stdout = sys.stdout, sys.stderr  # only the JSON answer goes to stdout (SDK logs go to stderr)
    cloud = _namespace(job["cloud"])
    resources = [Resource(**r) for r in job["resources"]]
    done = remove(resources, cloud, run_id=job["run_id"], reason=job["reason"], report=lambda r: None,
                  project=cloud.project, region=cloud.region, run_dir=job.get("run_dir", ""))
    json.dump([asdict(r) for r in done], result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
