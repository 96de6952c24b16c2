"""The Vertex AI SDK, set up once from `cloud.*`: project, region, credentials, endpoints.

`cloud.api_endpoint=http://HOST:PORT` sends the SDK's REST calls to a Vertex-compatible server
(the test server, an offline rehearsal); `cloud.storage_endpoint` is exported as
STORAGE_EMULATOR_HOST too, because the SDK makes its own Cloud Storage clients
(BatchPredictionJob.iter_outputs) and they read that variable.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any, Callable, TypeVar

from tfrun.tasks import cloud_auth

T = TypeVar("T")


def labels(cloud: Any, run_id: str, model_name: str) -> dict[str, str]:
    """The labels every resource a run creates carries: ours first, then cloud.labels."""
    from tfrun.tasks.core.vertex_catalog import label_value

    return {
        "tfrun-run-id": label_value(run_id),
        "tfrun-model": label_value(model_name),
        **{str(k): str(v) for k, v in dict(cloud.labels or {}).items()},
    }


def init(cloud: Any) -> Any:
    """aiplatform, initialised for this project and region; returns the module."""
    if cloud.storage_endpoint:
        os.environ["STORAGE_EMULATOR_HOST"] = cloud.storage_endpoint
    credentials = cloud_auth.credentials(cloud)
    from google.cloud import aiplatform

    # The SDK logs every create at INFO ("To use this Model in another session: ..."), each module
    # through its own logger; tfrun's step lines and the record say the same, so only warnings remain.
    for name in list(logging.Logger.manager.loggerDict):
        if name.startswith("google.cloud.aiplatform"):
            logging.getLogger(name).setLevel(logging.WARNING)

    options: dict[str, Any] = {}
    if cloud.api_endpoint:
        options.update(api_endpoint=cloud.api_endpoint, api_transport="rest")
    aiplatform.init(
        project=cloud.project,
        location=cloud.region,
        credentials=credentials,
        staging_bucket=f"gs://{cloud.bucket}/{cloud.prefix}/staging",
        **options,
    )
    return aiplatform


def with_deadline(fn: Callable[[], T], timeout_s: float, what: str) -> T:
    """Run a blocking SDK call (a deploy's long-running operation) with our own deadline.

    The SDK waits for some operations without a limit; a run must not. On timeout the
    operation goes on server-side: the caller's clean-up finds what it made by its labels.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = err

    thread = threading.Thread(target=target, name=what, daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"{what} did not finish within {timeout_s:g} s (target.timeout_s)")
    if "error" in box:
        raise box["error"]
    return box["value"]


def short_error(err: BaseException) -> str:
    """One line for an SDK or HTTP error (google.api_core errors carry the server's message)."""
    message = getattr(err, "message", None) or str(err)
    code = getattr(err, "code", None)
    text = f"{type(err).__name__}: {message}"
    if code is not None and str(code) not in text:
        text += f" (code {code})"
    return " ".join(text.split())[:500]
