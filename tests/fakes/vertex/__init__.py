"""fake-vertex: a local Vertex AI REST server driven by the real google-cloud-aiplatform SDK.

    aiplatform.init(project=..., location=..., api_endpoint="http://127.0.0.1:PORT", api_transport="rest",
                    credentials=AnonymousCredentials(), staging_bucket="gs://...")

Models (upload/get/list/patch/delete), Endpoints (create/get/list/patch/delete, deployModel, undeployModel,
predict, rawPredict), BatchPredictionJobs, CustomJobs and HyperparameterTuningJobs (create/get/list/cancel/
delete) and long-running operations, with Vertex's validation and rules. Deploys and batch jobs run the
model's serving container as a local process (containers.py); a CustomJob runs every replica of every worker
pool as a local process with Vertex's TF_CONFIG / CLUSTER_SPEC / AIP_* environment (cluster.py,
replicas.py, custom_jobs.py) and a tuning job runs its trials that way (tuning.py, study.py); gs:// paths
live in a GCS emulator (--storage-endpoint). Tests steer it through the control API under /_fake/
(control.py) or the `fake_vertex` fixture (fixture.py).

    python -m tests.fakes.vertex --port 0 --storage-endpoint http://127.0.0.1:4443
"""

from __future__ import annotations

from typing import Any

__all__ = ["Fake", "FakeHttpServer"]


def __getattr__(name: str) -> Any:
    """Fake and FakeHttpServer, imported on first use: a replica or container script run as
    `python -m tests.fakes.vertex.<script>` imports this package first and needs none of the server (PEP 562)."""
    if name in __all__:
        from . import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
