"""vertex_preflight: credentials and both services checked before training, not after it.

A missing or refused credential, a bucket owned by someone else, or a server that does not
answer is one clear line within seconds, instead of an error after minutes of training.
Runs first in the plan of every cloud target; creates nothing.
"""

from __future__ import annotations

from typing import Any

from tfrun.tasks import cloud_auth, gcs
from tfrun.tasks.core.schema import option_class
from tfrun.tasks.vertex import client

CHECK_DEADLINE_S = 15.0


class PreflightError(RuntimeError):
    """A cloud setting that cannot work; one line naming the key."""

    user_facing = True


def _refused(err: BaseException) -> bool:
    return getattr(err, "code", None) in (401, 403) or type(err).__name__ in (
        "Unauthorized",
        "Forbidden",
        "RefreshError",
        "TransportError",
    )


def _failure(err: BaseException, cloud: Any, refused_key: str, where: str, endpoint_key: str) -> PreflightError:
    """One line for a service that refused the credentials (naming `refused_key`) or could not be reached."""
    if _refused(err):
        return PreflightError(
            f"{refused_key}: {where} refused the credentials ({cloud_auth.label(cloud)}: {client.short_error(err)})"
        )
    return PreflightError(f"{endpoint_key}: cannot reach {where} ({client.short_error(err)})")


def _bucket(cloud: Any) -> str:
    from google.api_core.retry import Retry

    storage = gcs.storage_client(cloud)
    where = cloud.storage_endpoint or "Cloud Storage"
    try:
        bucket = storage.lookup_bucket(cloud.bucket, timeout=10, retry=Retry(timeout=CHECK_DEADLINE_S))
    except Exception as err:  # noqa: BLE001 - every cause becomes one line
        raise _failure(err, cloud, f"cloud.bucket={cloud.bucket}", where, "cloud.storage_endpoint") from None
    return "exists" if bucket is not None else f"does not exist yet: will be created in {cloud.region}"


def _endpoint(aiplatform: Any, target: Any) -> str:
    """Whether the endpoint exists, and whether target.traffic_percentage can apply to it."""
    found = aiplatform.Endpoint.list(filter=f'display_name="{target.endpoint}"', order_by="create_time")
    deployed = found[0].list_models() if found else []
    if int(target.traffic_percentage) < 100 and not deployed:
        raise PreflightError(
            f"target.traffic_percentage={target.traffic_percentage}: endpoint {target.endpoint!r} "
            f"{'has no model deployed' if found else 'does not exist yet'}, and the first model on "
            "an endpoint takes 100 % of its traffic (a canary needs a model to share it with)"
        )
    if not found:
        return f"endpoint {target.endpoint!r} will be created"
    return f"endpoint {target.endpoint!r} exists with {len(deployed)} deployed model(s): it will be reused"


def _model(aiplatform: Any, cfg: Any) -> str:
    """Whether the upload will be a new version of the Model tfrun registered before, or a new Model."""
    from tfrun.tasks.vertex.steps import existing_model

    target = cfg.target
    display = target.get("model_display_name") or cfg.model_name
    if not target.get("new_version", True):
        return f"a new Model {display!r} will be registered (target.new_version=false)"
    found = existing_model(aiplatform, display, cfg.model_name)
    if found is None:
        return f"no Model {display!r} of tfrun's yet: a new model will be registered"
    return f"Model {display!r} exists ({found.resource_name}): the upload will be a new version of it"


def _vertex(cfg: Any) -> str:
    cloud, target = cfg.cloud, cfg.target
    where = cloud.api_endpoint or f"Vertex AI in {cloud.region}"
    try:
        aiplatform = client.init(cloud)
        if "model_display_name" in target:
            model = client.with_deadline(lambda: _model(aiplatform, cfg), CHECK_DEADLINE_S, "listing models")
            if option_class("target", target).serves_online:
                found = client.with_deadline(
                    lambda: _endpoint(aiplatform, target), CHECK_DEADLINE_S, "listing endpoints"
                )
                return f"{model}; {found}"
            return model
        else:  # a training job (cluster=vertex) with no Vertex target
            client.with_deadline(
                lambda: aiplatform.CustomJob.list(filter=f'display_name="{cfg.model_name}"'),
                CHECK_DEADLINE_S,
                "listing custom jobs",
            )
        return "Vertex AI answers"
    except PreflightError:
        raise
    except ValueError as err:  # the SDK's own checks, e.g. an unsupported region
        raise PreflightError(f"cloud.region={cloud.region}: {client.short_error(err)}") from None
    except Exception as err:  # noqa: BLE001 - every cause becomes one line
        raise _failure(err, cloud, f"cloud.project={cloud.project}", where, "cloud.api_endpoint") from None


def step(cfg: Any, ctx: Any) -> dict[str, Any]:
    cloud_auth.credentials(cfg.cloud)  # CloudAuthError: one line saying how to get credentials
    bucket = _bucket(cfg.cloud)
    vertex = _vertex(cfg)
    return {
        "summary": f"credentials ({cloud_auth.label(cfg.cloud)}) accepted; gs://{cfg.cloud.bucket} {bucket}; {vertex}",
        "bucket": bucket,
        "vertex": vertex,
    }
