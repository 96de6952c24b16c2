"""TF Serving's metrics read back through a real Prometheus server (Debian's `prometheus`).

Two embedded servers (replicas of one repository) run with --monitoring_config_file, as target.metrics=true
starts them; the test starts Prometheus on 127.0.0.1 with a 1 s scrape of both REST ports, sends known REST and
gRPC requests (some failing: a bad input, an unknown model), and asks Prometheus' HTTP query API for the counts per
model and status, the latency histograms per API and entrypoint, the example counts, and that every replica was
scraped. Everything is started and stopped by PID. Under CI=true a missing prometheus fails the test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from typing import Any

import numpy as np
import pytest

from tests.helpers import free_port
from tests.integration.serving_models import digits_model, examples_model
from tfrun.tasks.tfserving import backends, metrics
from tfrun.tasks.tfserving.clients import GrpcClient, ServingRequestError
from tfrun.tasks.tfserving.config import BatchingParameters

pytestmark = pytest.mark.slow

X = (np.random.default_rng(3).random((2, 8, 8)) * 16).astype(np.float32)
PROMETHEUS_SETUP = "scripts/serving_setup.sh installs Debian's prometheus"


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or shutil.which("prometheus", path="/usr/bin:/usr/local/bin")
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"prometheus is not installed ({PROMETHEUS_SETUP}); CI must run this test")
        pytest.skip(f"prometheus is not installed ({PROMETHEUS_SETUP})")
    return found


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory):
    """Two embedded servers over one repository (digits, examples), Prometheus metrics on; the second batches
    (its gRPC Predict is grpc.aio's coroutine, counted by the same rules)."""
    root = tmp_path_factory.mktemp("repo")
    digits_model(root / "digits" / "1", seed=1)
    examples_model(root / "examples" / "1")
    (root / "models.config").write_text(
        "model_config_list {\n"
        f'  config {{ name: "digits" base_path: "{root / "digits"}" model_platform: "tensorflow" }}\n'
        f'  config {{ name: "examples" base_path: "{root / "examples"}" model_platform: "tensorflow" }}\n'
        "}\n"
    )
    monitoring = metrics.write_monitoring_config(root)  # the file target.metrics=true writes
    batching = root / "batching.config"
    batching.write_text(BatchingParameters(max_batch_size=8, batch_timeout_micros=1000).to_text())
    servers = []
    try:
        for i in range(2):
            spec = backends.ServerSpec(
                model_name="digits",
                base_path=root / "digits",
                model_config_file=root / "models.config",
                monitoring_config_file=monitoring,
                batching_parameters_file=batching if i == 1 else None,
                max_load_retries=0,
            ).with_free_ports()
            servers.append(backends.start("embedded", spec, log_path=root / f"replica{i}.log", detached=False))
        for server in servers:
            backends.wait_serving(server, 120)
            client = GrpcClient(server.spec.grpc_target, timeout=30)
            for name in ("digits", "examples"):
                client.wait_available(name, timeout=60, alive=server.alive)
            client.close()
        yield servers
    finally:
        for server in servers:
            server.stop()
            assert not server.alive()


@pytest.fixture(scope="module")
def prometheus(replicas, tmp_path_factory: pytest.TempPathFactory):
    """A real Prometheus scraping every replica each second; its query API's base URL."""
    binary = prometheus_binary()
    folder = tmp_path_factory.mktemp("prometheus")
    targets = ", ".join(f'"{s.spec.client_host}:{s.spec.rest_port}"' for s in replicas)
    (folder / "prometheus.yml").write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        "scrape_configs:\n"
        "  - job_name: tfserving\n"
        f"    metrics_path: {metrics.DEFAULT_PATH}\n"
        f"    static_configs:\n      - targets: [{targets}]\n"
    )
    port = free_port()
    log = (folder / "prometheus.log").open("w")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={folder / 'prometheus.yml'}",
            f"--storage.tsdb.path={folder / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()  # by PID
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def query(base: str, promql: str) -> list[dict[str, Any]]:
    import requests

    r = requests.get(f"{base}/api/v1/query", params={"query": promql}, timeout=10)
    r.raise_for_status()
    body = r.json()
    assert body["status"] == "success", body
    return body["data"]["result"]


def eventually(base: str, promql: str, want: dict[tuple, float], labels: tuple[str, ...], timeout: float = 60):
    """Poll until the query's series (by `labels`) equal `want`; the last answer otherwise."""
    deadline = time.monotonic() + timeout
    got: dict[tuple, float] = {}
    while time.monotonic() < deadline:
        try:
            got = {tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1]) for s in query(base, promql)}
        except Exception:  # noqa: BLE001 - Prometheus still starting
            got = {}
        if got == want:
            return got
        time.sleep(0.2)  # a scrape each second: a new answer is at most 0.2 s old
    return got


def _send(replicas) -> None:
    """Known requests: replica 0 gets 3 REST predicts, 2 gRPC predicts, a bad REST input, an unknown model over
    gRPC and a REST classify of 3 examples; replica 1 gets 2 gRPC predicts and a bad gRPC input."""
    import requests
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2

    first, second = replicas
    for _ in range(3):
        r = requests.post(f"{first.spec.rest_url}/v1/models/digits:predict", json={"instances": X.tolist()}, timeout=30)
        assert r.status_code == 200, r.text
    r = requests.post(f"{first.spec.rest_url}/v1/models/digits:predict", json={"instances": [[1, 2]]}, timeout=30)
    assert r.status_code == 400, r.text
    r = requests.post(
        f"{first.spec.rest_url}/v1/models/examples:classify",
        json={"signature_name": "classify_x", "examples": [{"x": 0.0}, {"x": 1.0}, {"x": 2.0}]},
        timeout=30,
    )
    assert r.status_code == 200, r.text

    def predict(server, name: str, x: np.ndarray) -> None:
        client = GrpcClient(server.spec.grpc_target, timeout=30)
        request = predict_pb2.PredictRequest()
        request.model_spec.name = name
        request.inputs["pixels"].CopyFrom(tf.make_tensor_proto(x))
        try:
            client.call(client.prediction.Predict, request)
        finally:
            client.close()

    for _ in range(2):
        predict(first, "digits", X)
        predict(second, "digits", X)
    with pytest.raises(ServingRequestError):
        predict(first, "nope", X)
    with pytest.raises(ServingRequestError):
        predict(second, "digits", X.reshape(2, 64))  # wrong shape: INVALID_ARGUMENT


def test_prometheus_reads_every_replicas_request_metrics(replicas, prometheus):
    _send(replicas)
    up = eventually(
        prometheus,
        'up{job="tfserving"}',
        {(f"{s.spec.client_host}:{s.spec.rest_port}",): 1.0 for s in replicas},
        ("instance",),
    )
    assert len(up) == 2 and set(up.values()) == {1.0}, f"every replica scraped: {up}"

    counts = {
        ("digits", "OK"): 7.0,  # 3 REST + 2 gRPC on replica 0, 2 gRPC on replica 1
        ("digits", "INVALID_ARGUMENT"): 2.0,  # a bad REST input (replica 0), a bad gRPC shape (replica 1)
        ("nope", "NOT_FOUND"): 1.0,
        ("examples", "OK"): 1.0,
    }
    got = eventually(
        prometheus, "sum by (model_name, status) (:tensorflow:serving:request_count)", counts, ("model_name", "status")
    )
    assert got == counts

    per_replica = {
        (f"{replicas[0].spec.client_host}:{replicas[0].spec.rest_port}", "OK"): 5.0,
        (f"{replicas[1].spec.client_host}:{replicas[1].spec.rest_port}", "OK"): 2.0,
        (f"{replicas[0].spec.client_host}:{replicas[0].spec.rest_port}", "INVALID_ARGUMENT"): 1.0,
        (f"{replicas[1].spec.client_host}:{replicas[1].spec.rest_port}", "INVALID_ARGUMENT"): 1.0,
    }
    got = eventually(
        prometheus, ':tensorflow:serving:request_count{model_name="digits"}', per_replica, ("instance", "status")
    )
    assert got == per_replica

    latency = {("Predict", "REST"): 3.0, ("Predict", "GRPC"): 4.0}  # successful requests only, as TF Serving times
    got = eventually(
        prometheus,
        'sum by (API, entrypoint) (:tensorflow:serving:request_latency_count{model_name="digits"})',
        latency,
        ("API", "entrypoint"),
    )
    assert got == latency
    under_inf = query(prometheus, ':tensorflow:serving:request_latency_bucket{model_name="digits",le="+Inf"}')
    assert sum(float(s["value"][1]) for s in under_inf) == 7.0
    assert query(prometheus, ":tensorflow:serving:request_latency_sum")[0]["value"][1] not in ("0", "NaN")

    examples = eventually(
        prometheus,
        'sum by (model) (:tensorflow:serving:request_example_counts_sum{model="examples"})',
        {("examples",): 3.0},
        ("model",),
    )
    assert examples == {("examples",): 3.0}
