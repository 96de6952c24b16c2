"""Remove the cloud resources a run created — and nothing else.

Used by `target.teardown=true`, by the runner after a failed, killed or interrupted run, and
by `tfrun-records cleanup`. Only ledger entries with `created: true` that may still exist are
touched (`kept` marks one tfrun will not remove: a bucket holding others' objects); resources found by the run's `tfrun-run-id` label but missing from the ledger (a
create whose answer never arrived) are added first. Each entry ends `removed`, `left` (with
why) or `failed_to_remove` (with the error and the command that removes it by hand).

    python -m tfrun.tasks.vertex.cleanup < {"cloud": {...}, "run_id": ..., "resources": [...], "reason": ...}
prints each resource's new status as a JSON line the moment it is known: how the runner, which
imports no SDK, cleans up (a clean-up cut short still reports what it finished).
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict
from types import SimpleNamespace
from typing import Any, Callable, Optional

from tfrun.tasks import gcs
from tfrun.tasks.core import vertex_catalog as catalog
from tfrun.tasks.core.vertex_catalog import TERMINAL_JOB_STATES
from tfrun.tasks.vertex import client
from tfrun.tasks.vertex.resources import ALIVE, REMOVAL_ORDER, Resource, links

Report = Callable[[Resource], None]
JOB_CLASSES = {"batch_job": "BatchPredictionJob", "custom_job": "CustomJob", "tuning_job": "HyperparameterTuningJob"}
JOB_CANCEL_DEADLINE_S = 300.0


def _remaining_split(endpoint: Any, deployed_id: str, before: dict[str, int]) -> Optional[dict[str, int]]:
    """The traffic split to leave behind when our deployed model goes (None: nothing to reassign).

    The split from before this run is restored only when the same other models are still there;
    otherwise (another run's canary came since) the others keep their current shares, scaled to 100.
    """
    current = {k: int(v) for k, v in dict(endpoint.traffic_split or {}).items()}
    others = [m.id for m in endpoint.list_models() if m.id != deployed_id]
    if not others or not current.get(deployed_id):
        return None
    restored = {k: v for k, v in before.items() if v}
    if set(restored) == set(others) and sum(restored.values()) == 100:
        return restored
    shares = {k: current.get(k, 0) for k in others}
    total = sum(shares.values())
    if total == 0:  # everything went to ours: give it all to the first remaining model
        return {others[0]: 100}
    split = {k: v * 100 // total for k, v in shares.items()}
    split[others[0]] += 100 - sum(split.values())
    return split


def _bare(model_name: str) -> str:
    return model_name.split("@", 1)[0]


def _our_versions(resources: list[Resource]) -> set[tuple[str, str]]:
    """(Model name, version id) of each Model version this run created (a new Model is its version 1)."""
    ours = set()
    for r in resources:
        if r.created and r.kind == "model":
            ours.add((_bare(r.name), str(r.details.get("version_id") or "1")))
        elif r.created and r.kind == "model_version":
            ours.add((_bare(r.name), r.name.rsplit("@", 1)[-1]))
    return ours


def _undeploy(endpoint: Any, deployed_id: str, before: dict[str, int]) -> str:
    split = _remaining_split(endpoint, deployed_id, before)
    endpoint.undeploy(deployed_model_id=deployed_id, traffic_split=split)
    return "undeployed" + (f"; traffic now {split}" if split else "")


def _sweep_endpoints(resources: list[Resource], aiplatform: Any, run_id: str) -> list[str]:
    """Undeploy this run's models from every endpoint it touched, recorded or not.

    A deploy that timed out or was interrupted may finish after the run gave up on it; it is this
    run's if its model is one of the run's Models or its display name carries the run id.
    """
    versions = _our_versions(resources)
    before = next((dict(r.details.get("traffic_before") or {}) for r in resources if r.kind == "deployed_model"), {})
    done = []
    for res in resources:
        if res.kind != "endpoint" or res.status == "removed":
            continue
        endpoint = aiplatform.Endpoint(res.name)
        for deployed in endpoint.list_models():
            version = (_bare(deployed.model), str(getattr(deployed, "model_version_id", "") or "1"))
            if version in versions or deployed.display_name.endswith(run_id):
                done.append(f"{deployed.id}: {_undeploy(endpoint, deployed.id, before)}")
                endpoint = aiplatform.Endpoint(res.name)
    return done


def _job(aiplatform: Any, kind: str, name: str) -> Any:
    """A job by resource name (CustomJob and HyperparameterTuningJob are looked up with get())."""
    cls = getattr(aiplatform, JOB_CLASSES[kind])
    return cls(name) if kind == "batch_job" else cls.get(name)


def wait_terminal(job: Any, deadline_s: float, poll_s: float = 2.0) -> str:
    """The job's state once it ended, or when `deadline_s` passed."""
    deadline = time.monotonic() + deadline_s
    while True:
        state = job.state.name
        if state in TERMINAL_JOB_STATES or time.monotonic() > deadline:
            return state
        time.sleep(poll_s)


def _remove_one(res: Resource, aiplatform: Any, storage: Any) -> tuple[str, str]:
    """Remove one resource; (status, why)."""
    if res.kind == "deployed_model":
        endpoint = aiplatform.Endpoint(res.details["endpoint"])
        if res.resource_id not in {m.id for m in endpoint.list_models()}:
            return "removed", "no longer deployed"
        return "removed", _undeploy(endpoint, res.resource_id, dict(res.details.get("traffic_before") or {}))
    if res.kind == "endpoint":
        endpoint = aiplatform.Endpoint(res.name)
        if endpoint.list_models():
            return "kept", (
                "another model is deployed on it now (not this run's): kept; an endpoint "
                "with no model deployed costs nothing, and `tfrun-records cleanup` tries again once it has none"
            )
        endpoint.delete()
        return "removed", "deleted"
    if res.kind in JOB_CLASSES:
        job = _job(aiplatform, res.kind, res.name)
        if job.state.name not in TERMINAL_JOB_STATES:
            job.cancel()  # asynchronous: Vertex deletes only jobs that have finished
            state = wait_terminal(job, JOB_CANCEL_DEADLINE_S)
            if state not in TERMINAL_JOB_STATES:
                raise TimeoutError(f"the job is still {state} {JOB_CANCEL_DEADLINE_S:g} s after cancel")
        job.delete()
        return "removed", "cancelled if running, then deleted"
    if res.kind == "model":  # this run made the Model: its version, or the Model when no other version is left
        return _remove_version(aiplatform, _bare(res.name), str(res.details.get("version_id") or "1"), "")
    if res.kind == "model_version":
        model, _, version = res.name.rpartition("@")
        return _remove_version(aiplatform, model, version, str(res.details.get("default_version_before") or ""))
    if res.kind == "gcs_objects":
        n = gcs.delete_prefix(storage, res.name)
        return "removed", f"{n} object(s) deleted"
    if res.kind == "bucket":
        name = res.name.removeprefix("gs://").rstrip("/")
        if not gcs.bucket_exists(storage, name):
            return "removed", "already gone"
        if gcs.delete_bucket_if_empty(storage, name):
            return "removed", "deleted (it was empty)"
        return "kept", (
            "holds objects this run did not write: kept; `tfrun-records cleanup` tries again once they are gone"
        )
    raise ValueError(f"unknown resource kind {res.kind!r}")


def _remove_version(aiplatform: Any, model: str, version: str, default_before: str) -> tuple[str, str]:
    """Delete one version of a Model, never another: the Model itself only when that version is all it holds.

    Vertex keeps one version carrying `default` at all times, so when it is ours it first moves to the version
    that had it before this run (`default_before`) if that one is still there, else to the newest other one."""
    try:
        registry = aiplatform.models.ModelRegistry(model)
        versions = {v.version_id: list(v.version_aliases) for v in registry.list_versions()}
    except Exception as err:  # noqa: BLE001 - a Model already gone is removed; anything else is raised
        if type(err).__name__ == "NotFound":
            return "removed", "already gone"
        raise
    if version not in versions:
        return "removed", f"version {version} already gone"
    others = sorted((v for v in versions if v != version), key=int)
    if not others:
        aiplatform.Model(model).delete()
        return "removed", f"deleted (version {version} was the Model's only version)"
    moved = ""
    if "default" in versions[version]:
        heir = default_before if default_before in others else others[-1]
        registry.add_version_aliases(["default"], version=heir)
        moved = f"; the default alias moved to version {heir}"
    registry.delete_version(version)
    return "removed", f"version {version} deleted, versions {', '.join(others)} left as they were{moved}"


def _labelled(aiplatform: Any, run_label: str) -> list[tuple[str, str, str]]:
    """(kind, name, display name) of Vertex resources carrying this run's label."""
    found = []
    query = f'labels.tfrun-run-id="{run_label}"'
    for kind, cls in (
        ("model", aiplatform.Model),
        ("endpoint", aiplatform.Endpoint),
        *((kind, getattr(aiplatform, name)) for kind, name in JOB_CLASSES.items()),
    ):
        for item in cls.list(filter=query):
            version = str(getattr(item, "version_id", "") or "1") if kind == "model" else "1"
            if version != "1":  # a version this run added to a Model it did not make
                found.append(("model_version", f"{item.resource_name}@{version}", item.display_name))
            else:
                found.append((kind, item.resource_name, item.display_name))
    return found


def _labelled_versions(aiplatform: Any, resources: list[Resource], run_label: str) -> list[tuple[str, str, str]]:
    """Versions carrying this run's label in the Models the run added a version to (not the default one, which
    `_labelled` lists): an upload whose answer never came."""
    found = []
    for res in resources:
        if res.kind == "model" and not res.created:
            registry = aiplatform.models.ModelRegistry(res.name)
            for v in registry.list_versions(filter=f'labels.tfrun-run-id="{run_label}"'):
                found.append(("model_version", f"{_bare(res.name)}@{v.version_id}", v.model_display_name))
    return found


def remove(
    resources: list[Resource],
    cloud: Any,
    *,
    run_id: str,
    reason: str,
    report: Report,
    project: str,
    region: str,
    run_dir: str,
) -> list[Resource]:
    """Remove this run's live resources (labelled orphans included), in dependency order."""
    aiplatform = client.init(cloud)
    storage = gcs.storage_client(cloud)
    known = {r.name for r in resources}
    try:
        label = catalog.label_value(run_id)
        for kind, name, display in [*_labelled(aiplatform, label), *_labelled_versions(aiplatform, resources, label)]:
            if name not in known and not (kind == "model" and f"{name}@1" in known):
                known.add(name)
                res = Resource(
                    kind=kind,
                    name=name,
                    created=True,
                    display_name=display,
                    why="found by this run's tfrun-run-id label (not in the ledger)",
                )
                res.console, res.remove_command = links(res, project, region, run_dir)
                resources.append(res)
                report(res)
    except Exception as err:  # noqa: BLE001 - the ledger is still cleaned up
        print(f"[tfrun] could not list resources by label: {client.short_error(err)}", file=sys.stderr)
    try:
        swept = _sweep_endpoints(resources, aiplatform, run_id)
        if swept:
            print(f"[tfrun] undeployed this run's models found on its endpoints: {'; '.join(swept)}", file=sys.stderr)
    except Exception as err:  # noqa: BLE001 - the ledger's own entries are still handled below
        print(f"[tfrun] could not look for this run's deployments: {client.short_error(err)}", file=sys.stderr)
    todo = sorted((r for r in resources if r.created and r.status in ALIVE), key=lambda r: REMOVAL_ORDER.index(r.kind))
    failed_kinds: set[str] = set()
    for res in todo:
        try:
            if res.kind == "gcs_objects" and failed_kinds & {"model", "model_version", "batch_job"}:
                raise RuntimeError("kept: a Model or job made from these files could not be removed yet")
            if res.kind == "bucket" and "gcs_objects" in failed_kinds:
                raise RuntimeError("kept: this run's objects in it could not be removed yet")
            status, why = _remove_one(res, aiplatform, storage)
        except Exception as err:  # noqa: BLE001 - record it and go on with the rest
            status, why = (
                "failed_to_remove",
                (
                    f"{client.short_error(err)}; `tfrun-records cleanup` retries, or "
                    f"remove it with: {res.remove_command}"
                ),
            )
            failed_kinds.add(res.kind)
        res.status, res.why = status, f"{reason}: {why}"
        report(res)
    return resources


def _namespace(value: Any) -> Any:
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _namespace(v) if k != "labels" else v for k, v in value.items()})
    return value


def main() -> int:
    """Read the job on stdin; write one JSON line per resource as soon as its status is known."""
    job = json.load(sys.stdin)
    result, sys.stdout = sys.stdout, sys.stderr  # only the JSON lines go to stdout (SDK logs go to stderr)

    def report(res: Resource) -> None:
        result.write(json.dumps(asdict(res)) + "\n")
        result.flush()

    cloud = _namespace(job["cloud"])
    resources = [Resource(**r) for r in job["resources"]]
    remove(
        resources,
        cloud,
        run_id=job["run_id"],
        reason=job["reason"],
        report=report,
        project=cloud.project,
        region=cloud.region,
        run_dir=job.get("run_dir", ""),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
