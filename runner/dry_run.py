"""`cloud.dry_run=true`: every cloud resource a run would create, printed before anything runs.

Pure Python from the validated config (no SDK, no network): full names where they are known
before the service assigns an id, machine specs, images, Cloud Storage paths and labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfrun.tasks import cloud_auth
from tfrun.tasks.core import project_files, sources
from tfrun.tasks.core import vertex_catalog as catalog
from tfrun.tasks.export import next_version
from tfrun.tasks.vertex import client


def _next_version(config: Any) -> int:
    return next_version(Path(config.models_dir) / config.model_name)


def _machine(target: Any) -> str:
    gpu = f", {target.accelerator_count} x {target.accelerator_type}" if target.accelerator_type else ""
    return f"{target.machine_type}{gpu}"


def _model_lines(config: Any, parent: str) -> list[str]:
    """Where the upload goes: a new version of the Model tfrun registered under this display name before, or a
    new Model (the dry run connects to nothing, so it says which applies when)."""
    target = config.target
    aliases = ["default"] if target.default_version else []
    aliases += list(target.version_aliases)
    named = f"display name {target.model_display_name!r}"
    if not target.new_version:
        return [
            f"  4. model       new model {parent}/models/<id assigned by Vertex> {named} (target.new_version=false)"
        ]
    return [
        f"  4. model       new version of the Model with {named} and label tfrun-model="
        f"{catalog.label_value(config.model_name)} if one exists in {parent}, aliases {', '.join(aliases) or 'none'};",
        f"                 else new model {parent}/models/<id assigned by Vertex> (version 1, alias default)",
    ]


def _stopping(choice: Any, metric: str) -> str:
    """The study's automated stopping spec as the request carries it (REST v1 JSON)."""
    import json

    from tfrun.tasks.core.schema.vertex import stopping_spec

    spec = stopping_spec(choice)
    if not spec:
        return "none, every trial runs all its epochs"
    return f"studySpec {json.dumps(spec)}, on the {metric} each trial reports every epoch"


def lines(config: Any, run_id: str, overrides: list[str], config_dirs: list[str] | None = None) -> list[str]:
    """What `cloud.dry_run=true` prints for this config."""
    if config.job.value == "promote":  # only target=vertex_endpoint promotes with a cloud plan (cloud_problems)
        from tfrun.tasks.vertex.promote import plan_lines

        return plan_lines(config)
    if config.cluster.on_vertex:
        return vertex_job_lines(config, run_id, overrides, config_dirs or [])
    return deployment_lines(config, run_id)


def vertex_job_lines(config: Any, run_id: str, overrides: list[str], config_dirs: list[str]) -> list[str]:
    """cluster=vertex (and sweep=vertex): the job spec the run would submit, then what follows it."""
    from tfrun.tasks.vertex import training_spec
    from tfrun.tasks.vertex.staging_rules import plan_of, requirement_lines

    cloud, tuning = config.cloud, config.tuning
    labels = client.labels(cloud, run_id, config.model_name)
    tune = config.job.value == "tune"
    project = plan_of(config, config_dirs)
    spec = training_spec.job_spec(
        config,
        overrides,
        run_id,
        labels,
        display_name=f"{tuning.display_name}-trial" if tune else None,
        trial_keys=tuple(tuning.space()) if tune else None,
        project=project if project.files else None,
    )
    requires = [line for _, line in requirement_lines(config.cluster.requirements)[0]]
    parent = f"projects/{cloud.project}/locations/{cloud.region}"
    what = "hyperparameterTuningJobs" if tune else "customJobs"
    lines = [
        "tfrun dry run (cloud.dry_run=true): nothing is packaged, created or sent; the run would",
        f"  1. bucket      gs://{cloud.bucket} in {cloud.region}: used if it exists, else created",
        f"  2. stage       {spec.staging_dir}: "
        + (
            f"{spec.package_uri.rsplit('/', 1)[-1]} (this tfrun, versions pinned), requirements.txt, "
            if spec.uses_package
            else ""
        )
        + "config.yaml, overrides.json",
    ]
    if project.files:
        lines.append(f"                 project.tar.gz + project.json: {project.describe()}")
        lines += [f"                   {f.name} ({project_files.megabytes(f.bytes)})" for f in project.files[:12]]
        if len(project.files) > 12:
            lines.append(f"                   ... and {len(project.files) - 12} more (project.json lists them all)")
    if requires:
        lines.append(f"                 requirements (installed with tfrun's pinned set): {', '.join(requires)}")
    lines += [
        f"  3. submit      {parent}/{what}/<id assigned by Vertex> display name "
        f"{tuning.display_name if tune else spec.display_name!r}"
    ]
    if tune:
        params = ", ".join(f"{k} ({v.type.value})" for k, v in tuning.space().items())
        goal = "maximize" if tuning.maximize(config.optimized_metric) else "minimize"
        lines += [
            f"                 {goal} {config.optimized_metric} over {params}",
            f"                 {tuning.max_trial_count} trials, {tuning.parallel_trial_count} in parallel, "
            f"{tuning.max_failed_trial_count} failures allowed (0 = Vertex decides), "
            f"algorithm {tuning.algorithm.value}",
            f"                 automated stopping (tuning.early_stopping={tuning.early_stopping.value}): "
            + _stopping(tuning.early_stopping, config.optimized_metric)
            + "; each trial is this job:",
        ]
    lines += [f"                 {line}" for line in training_spec.describe(spec)]
    if tune:
        lines.append("  4. summarise   every trial's record into the sweep dir: table, best trial and its tfrun line")
    elif "vertex_model" not in config.target.steps:  # target=none, or a target that runs on this machine
        lines.append(
            f"  4. register    the job's model ({spec.base_output_dir}model/) as a Vertex Model, image "
            + catalog.serving_image(
                config.cluster.serving_container,
                region=cloud.region,
                project=cloud.project,
                gpu=False,
                tfrun_image=None,
            )
        )
        if config.target.deploys:
            lines.append(
                f"  5. then        target={config.target.name} here, on the job's model downloaded as "
                f"{config.models_dir}/{config.model_name}/{_next_version(config):04d} (hash-checked): "
                + ", ".join(config.target.steps)
            )
    else:
        lines.append(
            f"  4. then        target={config.target.name} from {spec.base_output_dir}model/ (no second upload):"
        )
        lines += ["  " + line for line in deployment_lines(config, run_id)[3:-3]]
    machines = sum(p.replicas for p in spec.pools) * (tuning.max_trial_count if tune else 1)
    service = cloud.api_endpoint or f"https://{cloud.region}-aiplatform.googleapis.com"
    lines += [
        f"services: Vertex AI {service}, Cloud Storage {cloud.storage_endpoint or 'https://storage.googleapis.com'}; "
        f"credentials: {cloud_auth.label(cloud)}",
        f"cost: up to {machines} machine(s) billed per hour while the job runs"
        + (" (bounded by run.timeout_s)" if spec.timeout_s else " (no run.timeout_s: Vertex stops it after 7 days)")
        + "; Ctrl-C cancels it; Cloud Storage objects are billed while stored",
    ]
    return lines


def deployment_lines(config: Any, run_id: str) -> list[str]:
    """The plan as lines of text."""
    cloud, target = config.cloud, config.target
    version = _next_version(config)
    first = f"  1. train and export locally: {config.models_dir}/{config.model_name}/{version:04d} (version number as of now)"
    if config.job.value == "deploy":  # no training: the source SavedModel (checked by the runner before this)
        source = sources.resolve(str(config.source))
        version = int(source.saved_model.name) if source.saved_model.name.isdigit() else 1
        run_id = source.link("")["run_id"]
        run = f"run {run_id}" if run_id else "no run record"
        first = f"  1. deploy the source SavedModel {source.saved_model} ({run}; its files as recorded), no training"
    parent = f"projects/{cloud.project}/locations/{cloud.region}"
    labels = client.labels(cloud, run_id, config.model_name)
    model_uri = f"gs://{cloud.bucket}/{cloud.prefix}/{config.model_name}/{version:04d}/"
    image = catalog.serving_image(
        target.serving_container,
        region=cloud.region,
        project=cloud.project,
        gpu=target.gpu,
        tfrun_image=target.tfrun_image,
    )
    service = cloud.api_endpoint or f"https://{cloud.region}-aiplatform.googleapis.com"
    storage = cloud.storage_endpoint or "https://storage.googleapis.com"
    lines = [
        "tfrun dry run (cloud.dry_run=true): nothing is trained, created or sent; the run would",
        first,
        f"  2. bucket      gs://{cloud.bucket} in {cloud.region}: used if it exists, else created (labels {labels})",
        f"  3. upload      {model_uri} (parallel x{cloud.upload_workers}, crc32c-checked, saved_model.pb last)",
        *_model_lines(config, parent),
        f"                 image {image}",
    ]
    if target.serving_container == "prebuilt":
        lines.append(
            f"                 (prebuilt TF {catalog.PREBUILT_TF_PREDICTION_VERSION}, older than the TF "
            f"{catalog.TRAINED_WITH_TF} this project trains with)"
        )
    if target.serves_online:
        lines += [
            f"  5. endpoint    display name {target.endpoint!r}: reused if one exists, else "
            f"{parent}/endpoints/<id> created",
            f"  6. deploy      {_machine(target)}, replicas {target.min_replicas}-{target.max_replicas}, "
            f"traffic {target.traffic_percentage} %, deadline {target.timeout_s:g} s",
            f"  7. check       parity on the holdout over Endpoint.predict (requests under "
            f"{target.max_payload_bytes:,} bytes), latency over {target.latency_requests} requests",
        ]
        cost = "the deployed model is billed per replica-hour until undeployed"
    else:
        prefix = f"gs://{cloud.bucket}/{cloud.prefix}/{config.model_name}/batch/{version:04d}-{run_id}/"
        lines += [
            f"  5. instances   {prefix}input/ ({target.shards} JSON Lines shard(s))",
            f"  6. batch job   {parent}/batchPredictionJobs/<id> on {_machine(target)}, replicas "
            f"{target.starting_replicas}-{target.max_replicas}, output {prefix}output/, deadline "
            f"{target.timeout_s:g} s",
            "  7. check       results matched to instances, accuracy equal to the local model's",
        ]
        cost = "the job is billed per node-hour while it runs"
    after = (
        "removed after the checks (target.teardown=true)"
        if target.teardown
        else "kept (target.teardown=false): `tfrun-records cleanup RUN` removes them"
    )
    lines += [
        f"  then          everything created is {after}; on any failure it is removed",
        f"services: Vertex AI {service}, Cloud Storage {storage}; credentials: {cloud_auth.label(cloud)}",
        f"cost: {cost}; Cloud Storage objects are billed while stored",
    ]
    return lines
