"""Steps both Vertex targets share: the export to Cloud Storage, the Vertex Model, the report.

    vertex_upload   bucket created in cloud.region if missing; the export to
                    gs://BUCKET/PREFIX/<model_name>/<NNNN>/ (parallel, crc32c-checked, saved_model.pb last)
    vertex_model    Model.upload with the serving image and the run's labels: a new version of the Model with
                    this display name and tfrun's labels when one exists (target.new_version), else a new Model
    vertex_report   the deployment entry (resources, console links, removal commands); with
                    target.teardown=true removes what this run created, else marks it `left`
Endpoint steps are in tasks/vertex/endpoint.py, batch steps in tasks/vertex/batch.py. Every
resource goes into the ledger (tasks/vertex/resources.py) before the call that creates it
returns to anything else, so a failure at any point leaves a record of it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Optional

from tfrun.tasks import gcs
from tfrun.tasks.core import vertex_catalog as catalog
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.vertex import cleanup, client
from tfrun.tasks.vertex.resources import KEPT_COST, Ledger, Resource

STATE = "vertex"


class TeardownFailed(RuntimeError):
    """Something this run created could not be removed; the record lists it as failed_to_remove."""


@dataclass
class VertexRun:
    """What the Vertex steps of one run share."""

    cloud: Any
    ledger: Ledger
    labels: dict[str, str]
    run_id: str
    storage: Any = None
    aiplatform: Any = None
    model_uri: str = ""
    image: str = ""
    image_note: str = ""
    model: Any = None
    timings_s: dict[str, float] = field(default_factory=dict)
    entry: dict[str, Any] = field(default_factory=dict)  # target-specific part of the deployment entry

    def sdk(self) -> Any:
        if self.aiplatform is None:
            self.aiplatform = client.init(self.cloud)
        return self.aiplatform


def vertex_run(cfg: Any, ctx: Any) -> VertexRun:
    """The shared state, made by the first Vertex step of the run."""
    if STATE not in ctx.state:
        cloud = cfg.cloud
        from tfrun.tasks.core.record_io import relative

        ledger = Ledger(ctx.emit, project=str(cloud.project), region=str(cloud.region), run_dir=relative(ctx.run_dir))
        run = VertexRun(
            cloud=cloud, ledger=ledger, labels=client.labels(cloud, ctx.run_id, cfg.model_name), run_id=ctx.run_id
        )
        run.storage = gcs.storage_client(cloud)
        ctx.state[STATE] = run
    return ctx.state[STATE]


def ensure_bucket(run: VertexRun) -> None:
    """cloud.bucket, created in cloud.region when missing; in the ledger either way (created or reused)."""
    cloud = run.cloud
    created = gcs.ensure_bucket(run.storage, cloud.bucket, cloud.region, run.labels)
    run.ledger.add(
        "bucket",
        f"gs://{cloud.bucket}",
        created=created,
        why=f"created in {cloud.region} (it did not exist)" if created else "",
    )
    if created:
        print(f"[vertex] bucket gs://{cloud.bucket} did not exist: created it in {cloud.region}", flush=True)


def model_prefix(cfg: Any, version: int) -> str:
    """Where a version's SavedModel lives: gs://BUCKET/PREFIX/<model_name>/<NNNN>/."""
    return f"gs://{cfg.cloud.bucket}/{cfg.cloud.prefix}/{cfg.model_name}/{version:04d}/"


# --------------------------------------------------------------------------------------- upload
def upload_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    run = vertex_run(cfg, ctx)
    cloud, export = cfg.cloud, ctx.need("export")
    ensure_bucket(run)
    uri = model_prefix(cfg, int(export["version"]))
    local = Path(export["path"])
    existing = gcs.list_uris(run.storage, uri)
    if existing:
        differing = gcs.verify_tree(run.storage, local, uri)
        if differing:
            raise RuntimeError(
                f"{uri} already holds a different model ({len(differing)} file(s) differ, e.g. "
                f"{differing[0]}): it is not this run's to overwrite; choose another cloud.prefix "
                "or remove it yourself"
            )
    entry = run.ledger.add(
        "gcs_objects",
        uri,
        created=not existing,
        why="" if not existing else "the same files were already there: not this run's to remove",
    )
    report = gcs.upload_tree(run.storage, local, uri, workers=int(cloud.upload_workers), progress=True)
    run.model_uri = uri
    run.timings_s["upload"] = report.seconds
    entry.details.update(files=report.files, bytes=report.bytes)
    run.ledger.report(entry)
    return {
        "summary": f"{uri}: {report.files} file(s), {report.bytes:,} bytes; {report.uploaded} uploaded, "
        f"{report.skipped} identical skipped, crc32c verified ({report.workers} workers, "
        f"{report.seconds:.2f} s)",
        "upload": report.as_dict() | {"blobs": None},
        "artifacts": [
            {
                "kind": "gcs_model",
                "path": uri,
                "sha256": export["sha256"],  # the same files, verified
                "bytes": export["bytes"],
            }
        ],
    }


# ---------------------------------------------------------------------------------------- model
def serving_image(cfg: Any) -> tuple[str, str]:
    """(image URI, note about its TensorFlow version) for target.serving_container (cluster.serving_container
    when a Vertex training job registers its model with no Vertex target)."""
    target, cloud = cfg.target, cfg.cloud
    if "serving_container" in target:
        choice, gpu, tfrun_image = target.serving_container, target.accelerator_type is not None, target.tfrun_image
    else:
        choice, gpu, tfrun_image = cfg.cluster.serving_container, False, None
    image = catalog.serving_image(choice, region=cloud.region, project=cloud.project, gpu=gpu, tfrun_image=tfrun_image)
    note = ""
    if choice == "prebuilt":
        note = (
            f"the newest prebuilt TensorFlow prediction image serves TF {catalog.PREBUILT_TF_PREDICTION_VERSION}, "
            f"older than the TF {catalog.TRAINED_WITH_TF} this run trained with: ops added since "
            f"{catalog.PREBUILT_TF_PREDICTION_VERSION} would fail to load (the parity check tells); "
            "target.serving_container=tfrun serves with this project's own TensorFlow"
        )
    return image, note


def existing_model(aiplatform: Any, display_name: str, model_name: str) -> Any:
    """The oldest Model with this display name and tfrun's `tfrun-model` label for this model_name, or None:
    the Model a new upload becomes a version of (the first one registered, so every run adds to the same one)."""
    from tfrun.tasks.core.vertex_catalog import label_value

    query = f'display_name="{display_name}" AND labels.tfrun-model="{label_value(model_name)}"'
    found = sorted(aiplatform.Model.list(filter=query), key=lambda m: str(m.create_time))
    return found[0] if found else None


def _version_options(cfg: Any) -> tuple[bool, list[str], bool]:
    """(upload as a new version when the Model exists, aliases for the upload, whether it takes `default`).
    A Vertex training job registering its model with no Vertex target uses the defaults."""
    target = cfg.target
    return (
        bool(target.get("new_version", True)),
        [str(a) for a in target.get("version_aliases") or []],
        bool(target.get("default_version", True)),
    )


def model_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    run = vertex_run(cfg, ctx)
    aiplatform = run.sdk()
    run.image, run.image_note = serving_image(cfg)
    if run.image_note:
        print(f"[vertex] note: {run.image_note}", flush=True)
    started = time.monotonic()
    display_name = cfg.target.get("model_display_name") or cfg.model_name
    new_version, aliases, default_version = _version_options(cfg)
    parent = existing_model(aiplatform, display_name, cfg.model_name) if new_version else None
    options: dict[str, Any] = {}
    if parent is not None:
        # in the ledger before the upload: a clean-up then finds a version whose answer never came by its label
        run.ledger.add(
            "model",
            parent.resource_name,
            created=False,
            display_name=display_name,
            why="a Model with this display name and tfrun's labels existed: this run adds a version to it, "
            "never deletes it",
            details={"default_version_before": parent.version_id},
        )
        options = {"parent_model": parent.resource_name}
    model = aiplatform.Model.upload(
        display_name=display_name,
        artifact_uri=run.model_uri,
        serving_container_image_uri=run.image,
        labels=run.labels,
        version_aliases=list(aliases) or None,  # the SDK appends `default` to the list it is given
        is_default_version=default_version,
        sync=True,
        **options,
    )
    run.model = model
    version = str(model.version_id)
    details = {"image": run.image, "artifact_uri": run.model_uri, "version_id": version}
    details["version_aliases"] = sorted(model.version_aliases)
    if parent is None:
        run.ledger.add("model", model.resource_name, created=True, display_name=display_name, details=details)
        what = f"{model.resource_name} ({display_name}), a new Model"
    else:
        details["default_version_before"] = parent.version_id
        run.ledger.add(
            "model_version",
            f"{model.resource_name}@{version}",
            created=True,
            display_name=display_name,
            details=details,
        )
        what = f"{model.resource_name}@{version} ({display_name}), new version {version} of {model.resource_name}"
        print(f"[vertex] {what}; aliases {', '.join(details['version_aliases']) or 'none'}", flush=True)
    run.entry.update(model=model.resource_name, model_version=version, version_aliases=details["version_aliases"])
    run.timings_s["model_upload"] = round(time.monotonic() - started, 3)
    return {
        "summary": f"{what} from {run.model_uri}, image {run.image}",
        "model": model.resource_name,
        "model_version": version,
        "version_aliases": details["version_aliases"],
        "parent_model": parent.resource_name if parent is not None else None,
        "image": run.image,
        "image_note": run.image_note or None,
    }


# --------------------------------------------------------------------------------------- report
def teardown(cfg: Any, ctx: Any, run: VertexRun, reason: str) -> list[Resource]:
    """Remove this run's live resources now (in this process), reporting each."""
    from tfrun.tasks.core.record_io import relative

    return cleanup.remove(
        run.ledger.items,
        cfg.cloud,
        run_id=run.run_id,
        reason=reason,
        report=run.ledger.report,
        project=str(cfg.cloud.project),
        region=str(cfg.cloud.region),
        run_dir=relative(ctx.run_dir),
    )


def report_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    run: Optional[VertexRun] = ctx.state.get(STATE)
    target = cfg.target
    entry: dict[str, Any] = {"kind": target.name, **run.entry} if run else {"kind": target.name}
    if run is None:  # target.mode=local: nothing went to the cloud
        entry.update(ctx.state.get("vertex_local", {}))
        return {"summary": f"{target.name} (mode=local): nothing created in the cloud", "deployments": [entry]}
    if target.teardown:
        teardown(cfg, ctx, run, "target.teardown=true")
        failed = [r for r in run.ledger.items if r.status == "failed_to_remove"]
        if failed:  # the run must not look clean while something still costs money
            raise TeardownFailed(
                "target.teardown=true could not remove " + "; ".join(f"{r.kind} {r.name} ({r.why})" for r in failed)
            )
        status = "removed"
    else:
        for res in run.ledger.ours():
            why = f"target.teardown=false: kept ({KEPT_COST[res.kind]}); remove with `tfrun-records cleanup RUN`"
            run.ledger.set(res, "left", why)
        status = option_class("target", target).kept_status
    entry.update(
        status=status,
        image=run.image,
        image_note=run.image_note or None,
        model_uri=run.model_uri,
        timings_s=run.timings_s,
        resources=[asdict(r) for r in run.ledger.items],
    )
    names = ", ".join(f"{r.kind} {r.resource_id}: {r.status}" for r in run.ledger.items if r.kind != "bucket")
    tail = "" if target.teardown else "; `tfrun-records cleanup RUN` removes them"
    return {"summary": f"{status}: {names}{tail}", "deployments": [entry]}
