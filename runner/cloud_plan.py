"""`cloud.dry_run=true`: every cloud resource a run would create, printed before anything runs.

Pure Python from the validated config (no SDK, no network): full names where they are known
before the service assigns an id, machine specs, images, Cloud Storage paths and labels.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tasks import cloud_auth
from tasks.export import existing_versions
from tasks.vertex import catalog, client


def _next_version(config: Any) -> int:
    return max(existing_versions(Path(config.models_dir) / config.model_name), default=0) + 1


def _machine(target: Any) -> str:
    gpu = f", {target.accelerator_count} x {target.accelerator_type}" if target.accelerator_type else ""
    return f"{target.machine_type}{gpu}"


def plan(config: Any, run_id: str) -> list[str]:
    """The plan as lines of text."""
    cloud, target = config.cloud, config.target
    version = _next_version(config)
    parent = f"projects/{cloud.project}/locations/{cloud.region}"
    labels = client.labels(cloud, run_id, config.model_name)
    model_uri = f"gs://{cloud.bucket}/{cloud.prefix}/{config.model_name}/{version:04d}/"
    image = catalog.serving_image(target.serving_container, region=cloud.region, project=cloud.project,
                                  gpu=target.gpu, tfrun_image=target.tfrun_image)
    service = cloud.api_endpoint or f"https://{cloud.region}-aiplatform.googleapis.com"
    storage = cloud.storage_endpoint or "https://storage.googleapis.com"
    lines = [f"tfrun dry run (cloud.dry_run=true): nothing is trained, created or sent; the run would",
             f"  1. train and export locally: {config.models_dir}/{config.model_name}/{version:04d} "
             "(version number as of now)",
             f"  2. bucket      gs://{cloud.bucket} in {cloud.region}: used if it exists, else created "
             f"(labels {labels})",
             f"  3. upload      {model_uri} (parallel x{cloud.upload_workers}, crc32c-checked, saved_model.pb last)",
             f"  4. model       {parent}/models/<id assigned by Vertex> display name "
             f"{target.model_display_name!r}",
             f"                 image {image}"]
    if target.serving_container == "prebuilt":
        lines.append(f"                 (prebuilt TF {catalog.PREBUILT_TF_PREDICTION_VERSION}, older than the TF "
                     f"{catalog.TRAINED_WITH_TF} this project trains with)")
    if target.name == "vertex_endpoint":
        lines += [f"  5. endpoint    display name {target.endpoint!r}: reused if one exists, else "
                  f"{parent}/endpoints/<id> created",
                  f"  6. deploy      {_machine(target)}, replicas {target.min_replicas}-{target.max_replicas}, "
                  f"traffic {target.traffic_percentage} %, deadline {target.timeout_s:g} s",
                  f"  7. check       parity on the holdout over Endpoint.predict (requests under "
                  f"{target.max_payload_bytes:,} bytes), latency over {target.latency_requests} requests"]
        cost = "the deployed model is billed per replica-hour until undeployed"
    else:
        prefix = f"gs://{cloud.bucket}/{cloud.prefix}/{config.model_name}/batch/{version:04d}-{run_id}/"
        lines += [f"  5. instances   {prefix}input/ ({target.shards} JSON Lines shard(s))",
                  f"  6. batch job   {parent}/batchPredictionJobs/<id> on {_machine(target)}, replicas "
                  f"{target.starting_replicas}-{target.max_replicas}, output {prefix}output/, deadline "
                  f"{target.timeout_s:g} s",
                  "  7. check       results matched to instances, accuracy equal to the local model's"]
        cost = "the job is billed per node-hour while it runs"
    after = ("removed after the checks (target.teardown=true)" if target.teardown
             else "kept (target.teardown=false): `tfrun-records cleanup RUN` removes them")
    lines += [f"  then          everything created is {after}; on any failure it is removed",
              f"services: Vertex AI {service}, Cloud Storage {storage}; credentials: {cloud_auth.label(cloud)}",
              f"cost: {cost}; Cloud Storage objects are billed while stored"]
    return lines
