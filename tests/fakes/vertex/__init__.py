"""fake-vertex: a local Vertex AI REST server driven by the real google-cloud-aiplatform SDK.

    aiplatform.init(project=..., location=..., api_endpoint="http://127.0.0.1:PORT", api_transport="rest",
                    credentials=AnonymousCredentials(), staging_bucket="gs://...")

Models (upload/get/list/patch/delete), Endpoints (create/get/list/patch/delete, deployModel, undeployModel,
predict, rawPredict), BatchPredictionJobs (create/get/list/cancel/delete) and long-running operations, with
Vertex's validation and rules. Deploys and batch jobs run the model's serving container as a local process
(containers.py); batch inputs and outputs live in a GCS emulator (--storage-endpoint). Tests steer it
through the control API under /_fake/ (control.py) or the `fake_vertex` fixture (fixture.py).

    python -m tests.fakes.vertex --port 0 --storage-endpoint http://127.0.0.1:4443
"""

from .server import Fake, FakeHttpServer

__all__ = ["Fake", "FakeHttpServer"]
