"""cluster=vertex on the submitting machine: stage the code, run the CustomJob, take back what it trained.

    vertex_stage       the tfrun wheel (versions pinned), its requirements and the composed config to
                       gs://BUCKET/PREFIX/staging/RUN_ID/
    vertex_job         aiplatform.CustomJob from tfrun.tasks.vertex.training_spec, submitted and followed until
                       it ends; Ctrl-C (or run.timeout_s) cancels it; a failed job fails the run with its error
    vertex_job_result  the chief's record (metrics, weights hash) and model from the job's output dir; the
                       model becomes the next local version (byte-checked against the chief's export)
    vertex_register    the model as a Vertex Model when no Vertex target follows (else the target's
                       vertex_model step registers it with the target's serving image)
Everything created is in the ledger the moment it exists (tasks/vertex/resources.py).
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from tfrun.tasks import gcs
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.core.vertex_catalog import TERMINAL_JOB_STATES
from tfrun.tasks.vertex import client, training_spec
from tfrun.tasks.vertex.resources import Resource
from tfrun.tasks.vertex.steps import VertexRun, ensure_bucket, model_step, vertex_run

STATE = "vertex_training"
PROJECT_STATE = "vertex_project"  # the staged ProjectPlan (tfrun.tasks.core.project_files) and its manifest
CANCEL_WAIT_S = 60.0


class VertexJobFailed(RuntimeError):
    """The job ended in another state than SUCCEEDED; the message carries Vertex's error."""

    user_facing = True


def typed_cluster(cfg: Any) -> Any:
    """cfg.cluster as the VertexCluster dataclass (its layout rules), from the child's plain config."""
    from omegaconf import OmegaConf

    from tfrun.tasks.core.schema.vertex import VertexCluster

    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(VertexCluster), cfg.cluster))


class TypedConfig:
    """The child's config with its cluster typed: what training_spec.job_spec reads."""

    def __init__(self, cfg: Any) -> None:
        self._cfg, self.cluster = cfg, typed_cluster(cfg)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cfg, name)


def job_spec(cfg: Any, ctx: Any, run: VertexRun, **options: Any) -> training_spec.JobSpec:
    return training_spec.job_spec(
        TypedConfig(cfg), ctx.overrides, ctx.run_id, run.labels, project=ctx.state.get(PROJECT_STATE), **options
    )


def custom_job(aiplatform: Any, spec: training_spec.JobSpec) -> Any:
    """The aiplatform.CustomJob of a spec (a job to submit, or a tuning job's trial job)."""
    return aiplatform.CustomJob(
        display_name=spec.display_name,
        worker_pool_specs=spec.worker_pool_specs(),
        base_output_dir=spec.base_output_dir,
        labels=spec.labels,
        staging_bucket=spec.staging_dir,
    )


def submit_options(spec: training_spec.JobSpec) -> dict[str, Any]:
    """What a CustomJob's submit() and a tuning job's run() take beside the spec: restarts, deadline, identity."""
    return {
        "restart_job_on_worker_restart": spec.restart_job_on_worker_restart,
        "timeout": int(spec.timeout_s) if spec.timeout_s else None,
        "service_account": spec.service_account,
    }


def add_outputs(run: VertexRun, spec: training_spec.JobSpec, why: str) -> Resource:
    """The job's output folder in the ledger before it is submitted (created by the job, removed with it)."""
    return run.ledger.add("gcs_objects", spec.base_output_dir, created=True, why=why)


# ------------------------------------------------------------------------------------------- stage
def stage_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from omegaconf import OmegaConf

    from tfrun.tasks.core import project_files
    from tfrun.tasks.core.record_io import redact
    from tfrun.tasks.vertex.package import build_wheel
    from tfrun.tasks.vertex.staging_rules import plan_of, requirement_lines

    run = vertex_run(cfg, ctx)
    ensure_bucket(run)
    staging = training_spec.staging_dir(cfg.cloud, ctx.run_id)
    entry = run.ledger.add(
        "gcs_objects",
        staging,
        created=True,
        why="created by this run: the job's code and config (removed with the run's resources)",
    )
    files = {
        "config.yaml": OmegaConf.to_yaml(OmegaConf.create(redact(OmegaConf.to_container(cfg)))).encode(),
        "overrides.json": json.dumps(training_spec.replica_args(ctx.overrides)).encode(),
    }
    user_requires = tuple(line for _, line in requirement_lines(cfg.cluster.get("requirements"))[0])
    wheel = build_wheel(user_requires) if cfg.cluster.container == "prebuilt" else None  # an image brings tfrun
    if wheel is not None:
        files.update({wheel.filename: wheel.data, "requirements.txt": ("\n".join(wheel.requires) + "\n").encode()})
    project, staged = plan_of(cfg, ctx.config_dirs), None
    if project.files:
        archive, manifest = project_files.build(project)
        files.update({project_files.ARCHIVE: archive, project_files.MANIFEST: project_files.manifest_bytes(manifest)})
        staged = {
            "uri": staging + project_files.ARCHIVE,
            "files": len(project.files),
            "bytes": manifest["bytes"],
            "archive_bytes": len(archive),
            "sha256": hashlib.sha256(archive).hexdigest(),
            "modules": project.modules,
            "config_dirs": project.config_dirs,
            "data": project.data,
        }
        ctx.state[PROJECT_STATE] = project
        ctx.state[PROJECT_STATE + "_manifest"] = manifest
    for name, data in files.items():
        gcs.write_bytes(run.storage, staging + name, data)  # crc32c checked
    entry.details.update(files=len(files), bytes=sum(len(d) for d in files.values()))
    run.ledger.report(entry)
    ctx.state[STATE] = {"staging": staging}
    code = (
        f"{wheel.filename} ({len(wheel.data):,} bytes, {len(wheel.requires)} pinned requirement lines"
        + (f" with {len(user_requires)} of cluster.requirements" if user_requires else "")
        + "), "
        if wheel
        else f"(the image {cfg.cluster.tfrun_image or cfg.cluster.container} brings tfrun) "
    )
    mine = f"{project_files.ARCHIVE} ({project.describe()}), " if staged else ""
    return {
        "summary": f"{staging}: {code}{mine}config.yaml, overrides.json",
        "staging": staging,
        "wheel": None
        if wheel is None
        else {
            "uri": staging + wheel.filename,
            "sha256": wheel.sha256,
            "bytes": len(wheel.data),
            "requirements": len(wheel.requires),
            "user_requirements": list(user_requires),
        },
        "project": staged,
    }


# --------------------------------------------------------------------------------------------- job
def follow(job: Any, run: VertexRun, entry: Resource, poll_s: float, noun: str) -> str:
    """Wait for a job to end, printing each new state; Ctrl-C cancels it (and waits for CANCELLED)."""
    seen = ""
    try:
        while True:
            state = job.state.name
            if state != seen:
                print(f"[vertex] {noun} {job.resource_name}: {state}", flush=True)
                entry.details["state"] = seen = state
                run.ledger.report(entry)
            if state in TERMINAL_JOB_STATES:
                return state
            time.sleep(poll_s)
    except KeyboardInterrupt:
        print(f"[vertex] interrupted: cancelling {noun} {job.resource_name}", flush=True)
        entry.details["state"] = cancel(job)
        entry.why = f"cancelled by this run (Ctrl-C or run.timeout_s): {entry.details['state']}"
        run.ledger.report(entry)
        print(f"[vertex] {noun} {job.resource_name}: {entry.details['state']}", flush=True)
        raise


def cancel(job: Any) -> str:
    """Cancel a running job and wait (bounded) until Vertex says it ended: the state it reached."""
    from tfrun.tasks.vertex.cleanup import wait_terminal

    try:
        job.cancel()
    except Exception as err:  # noqa: BLE001 - it may have ended meanwhile: its state says
        print(f"[vertex] cancel: {client.short_error(err)}", flush=True)
    return wait_terminal(job, CANCEL_WAIT_S, poll_s=0.5)


def job_error(job: Any) -> str:
    error = getattr(job._gca_resource, "error", None)
    message = getattr(error, "message", "") if error is not None else ""
    return " ".join(message.split())[:2000] or "no error message"


def job_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    run = vertex_run(cfg, ctx)
    state = ctx.need(STATE)
    aiplatform = run.sdk()
    spec = job_spec(cfg, ctx, run)
    for line in training_spec.describe(spec):
        print(f"[vertex]   {line}", flush=True)
    job = custom_job(aiplatform, spec)
    outputs = add_outputs(run, spec, "created by the job: its model, checkpoints and TensorBoard logs")
    started = time.monotonic()
    job.submit(**submit_options(spec))
    entry = run.ledger.add(
        "custom_job",
        job.resource_name,
        created=True,
        display_name=spec.display_name,
        details={"base_output_dir": spec.base_output_dir, "state": job.state.name},
    )
    print(f"[vertex] submitted {job.resource_name}\n[vertex] console: {entry.console}", flush=True)
    final = follow(job, run, entry, float(cfg.cluster.poll_interval_s), "job")
    seconds = round(time.monotonic() - started, 3)
    state.update(job=job.resource_name, base_output_dir=spec.base_output_dir, outputs=outputs, entry=entry)
    if final != "JOB_STATE_SUCCEEDED":
        raise VertexJobFailed(f"Vertex job {job.resource_name} ended {final}: {job_error(job)}")
    used = [p for p in spec.pools if p.replicas]
    return {
        "summary": f"{job.resource_name} {final} in {seconds:.1f} s ({len(used)} pool(s), "
        f"{sum(p.replicas for p in used)} replica(s))",
        "job": job.resource_name,
        "state": final,
        "seconds": seconds,
        "console": entry.console,
        "worker_pools": spec.worker_pool_specs(),
        "image": spec.image,
        "args": spec.args,
    }


# ------------------------------------------------------------------------------------------ result
def chief_record(run: VertexRun, base_output_dir: str) -> dict[str, Any]:
    from tfrun.tasks.core.vertex_env import record_uri

    uri = record_uri(base_output_dir + "model/")
    try:
        return json.loads(gcs.read_bytes(run.storage, uri))
    except FileNotFoundError:
        raise VertexJobFailed(
            f"the job succeeded but its chief wrote no record at {uri}: was the job run by "
            "tfrun (cluster=vertex) in every replica?"
        ) from None


def same_code_as_staged(cfg: Any, record: dict[str, Any], manifest: dict[str, Any] | None) -> None:
    """The chief ran the user's code that was staged: the same `_target_`s, each from a file whose sha256 is
    the staged one (tfrun.tasks.core.project_files). A mismatch fails the run, naming the file."""
    from tfrun.tasks.core.project_files import config_targets

    wanted = config_targets(cfg)
    ran = (record.get("code") or {}).get("user") or {}
    if {k: v.get("target") for k, v in ran.items()} != wanted:
        raise VertexJobFailed(
            f"the chief ran other code than this run names: targets {sorted(ran)} vs {sorted(wanted)}"
        )
    staged = {f["path"]: f["sha256"] for f in (manifest or {}).get("files", [])}
    modules = (manifest or {}).get("modules", {})
    for key, entry in ran.items():
        file, top = entry.get("file"), str(entry.get("target")).split(".", 1)[0]
        if top not in modules:
            continue  # an installed package (cluster.requirements), not the project's code
        if file not in staged:
            raise VertexJobFailed(
                f"{key}: the chief imported {entry.get('target')} from {file}, which is not in the staged project"
            )
        if staged[file] != entry.get("sha256"):
            raise VertexJobFailed(
                f"{key}: the chief's {file} has sha256 {str(entry.get('sha256'))[:12]}, the "
                f"staged file {staged[file][:12]}: not the code this run staged"
            )


def _export_artifact(record: dict[str, Any]) -> dict[str, Any]:
    found = [a for a in record.get("artifacts", []) if a.get("kind") == "saved_model"]
    if not found:
        raise VertexJobFailed("the chief's record names no exported model")
    return found[-1]


def download_model(cfg: Any, run: VertexRun, model_uri: str, expected_sha256: str) -> dict[str, Any]:
    """The job's SavedModel as the next local version; its tree hash must equal the chief's export's."""
    from tfrun.tasks.export import new_version, tree_sha256

    def same_as_the_chiefs(files: list[dict[str, Any]]) -> None:
        if tree_sha256(files) != expected_sha256:
            raise VertexJobFailed(
                f"{model_uri} holds other files than the chief exported (tree sha256 "
                f"{tree_sha256(files)[:12]} vs {expected_sha256[:12]}): not taken"
            )

    version, path, files = new_version(
        Path(cfg.models_dir) / cfg.model_name,
        lambda tmp: gcs.download_tree(run.storage, model_uri, tmp, workers=int(cfg.cloud.upload_workers)),
        same_as_the_chiefs,
    )
    return {
        "path": path,
        "version": version,
        "sha256": expected_sha256,
        "bytes": sum(f["bytes"] for f in files),
        "files": files,
    }


def _holdout_from_export(cfg: Any, ctx: Any, path: Path) -> dict[str, Any]:
    """Data and the downloaded model's holdout answers on this machine: what a Vertex target checks against."""
    import numpy as np
    import tensorflow as tf

    from tfrun.tasks import evaluate
    from tfrun.tasks.data.step import step as data_step
    from tfrun.tasks.export import load_once

    data_step(cfg, ctx)
    splits = ctx.state["data"]
    serve = load_once(ctx, path).signatures["serving_default"]
    batch = max(int(cfg.train.batch_size), 256)
    answers = [
        serve(tf.constant(splits.x_holdout[i : i + batch]))["probabilities"].numpy()
        for i in range(0, len(splits.x_holdout), batch)
    ]
    probabilities = np.concatenate(answers).astype("float32")
    ctx.state["holdout_probabilities"] = probabilities
    ctx.state["model"] = lambda x, training=False: serve(x)[
        "probabilities"
    ]  # the parity reference (tfrun.tasks.parity)
    return evaluate.metrics(probabilities, splits.y_holdout)


def result_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    from tfrun.tasks.core.record_io import relative
    from tfrun.tasks.export import output_names

    run, state = vertex_run(cfg, ctx), ctx.need(STATE)
    record = chief_record(run, state["base_output_dir"])
    if record.get("status") != "succeeded":
        error = record.get("error") or {}
        raise VertexJobFailed(
            f"the chief's run ended {record.get('status')}: {error.get('type')}: {error.get('message')}"
        )
    same_code_as_staged(cfg, record, ctx.state.get(PROJECT_STATE + "_manifest"))
    artifact = _export_artifact(record)
    model_uri = state["base_output_dir"] + "model/"
    export = download_model(cfg, run, model_uri, artifact["sha256"])
    ctx.state["export"] = {k: export[k] for k in ("path", "version", "sha256", "bytes")}
    run.model_uri = model_uri
    metrics = dict(record.get("metrics", {}).get("final", {}))
    checked = ""
    if option_class(
        "target", cfg.target
    ).deploys:  # the target's parity checks need the holdout and the model's answers
        here = _holdout_from_export(cfg, ctx, Path(export["path"]))
        if abs(here["holdout_accuracy"] - metrics.get("holdout_accuracy", float("nan"))) > 0:
            raise VertexJobFailed(
                f"the job's model scores holdout accuracy {here['holdout_accuracy']:.4f} here, "
                f"the chief recorded {metrics.get('holdout_accuracy')}: not the same model or data"
            )
        checked = f"; holdout accuracy here {here['holdout_accuracy']:.4f} = the chief's"
    chief = {
        "run_id": record.get("run_id"),
        "status": record.get("status"),
        "seconds": record.get("seconds"),
        "cluster": record.get("cluster"),
        "resumed_from_epoch": record.get("resumed_from_epoch"),
        "config_sha256": record.get("config_sha256"),
        "environment": record.get("environment"),
        "steps": [{"name": s["name"], "seconds": s["seconds"]} for s in record.get("steps", [])],
    }
    local = {
        "kind": "saved_model",
        "path": relative(export["path"]),
        "model_name": cfg.model_name,
        "version": export["version"],
        "signature": "serving_default",
        "input": artifact.get("input"),
        "outputs": artifact.get("outputs") or output_names(bool(cfg.export.class_id_output)),
        "sha256": export["sha256"],
        "bytes": export["bytes"],
        "files": export["files"],
        "source": model_uri,
    }
    resumed = f", resumed after epoch {chief['resumed_from_epoch']}" if chief["resumed_from_epoch"] else ""
    return {
        "summary": f"chief {record.get('run_id')}: {metrics.get(cfg.optimized_metric, float('nan')):.4f} "
        f"{cfg.optimized_metric}{resumed}; model {model_uri} -> {relative(export['path'])} "
        f"(byte-identical){checked}",
        "metrics": metrics,
        "weights_sha256": record.get("weights_sha256"),
        "chief": chief,
        "model_uri": model_uri,
        "artifacts": [
            local,
            {"kind": "gcs_model", "path": model_uri, "sha256": export["sha256"], "bytes": export["bytes"]},
        ],
    }


def register_step(cfg: Any, ctx: Any) -> dict[str, Any]:
    """The job's model as a Vertex Model (no Vertex target follows); what the run made is kept, not removed."""
    run = vertex_run(cfg, ctx)
    result = model_step(cfg, ctx)
    for res in run.ledger.ours():
        run.ledger.set(
            res, "left", "kept: the trained model and what made it; `tfrun-records cleanup RUN` removes them"
        )
    return result
