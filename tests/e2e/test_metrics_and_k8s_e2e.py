"""Through the real `tfrun` command, on the suite's shared trained model: target.metrics=true turns TF Serving's
Prometheus page on for every replica a deploy starts, and job=k8s renders manifests for that trained run."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import yaml

from tests.helpers import copy_trained, read_record, tfrun
from tfrun.tasks.tfserving import backends, metrics

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

COUNT = re.compile(r':tensorflow:serving:request_count\{model_name="([^"]*)",status="([^"]*)"\} (\d+)')


@pytest.fixture(scope="module")
def trained(trained_digits: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """This module's copy of the suite's shared training run (runs/train)."""
    return copy_trained(trained_digits, tmp_path_factory.mktemp("metrics"))


def _stop(pids: list[int]) -> None:
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(backends.pid_alive(p) for p in pids):
        time.sleep(0.2)
    assert not any(backends.pid_alive(p) for p in pids)


def test_target_metrics_on_every_replica(trained: Path):
    import requests

    proc = tfrun(
        "job=deploy",
        "source=runs/train",
        "target=tfserving",
        "target.metrics=true",
        "target.replicas=2",
        "target.keep_running=true",
        "target.latency_requests=20",
        "target.large_batch_requests=2",
        "hydra.run.dir=runs/metrics",
        cwd=trained,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    entry = read_record(trained / "runs" / "metrics")["deployments"][0]
    try:
        assert (trained / "runs" / "metrics" / metrics.MONITORING_FILE).is_file()
        assert len(entry["replicas"]) == 2
        for replica in entry["replicas"]:
            page = requests.get(replica["rest_url"] + metrics.DEFAULT_PATH, timeout=10)
            assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/plain")
            counts = {(m, s): int(n) for m, s, n in COUNT.findall(page.text)}
            assert counts.get(("digits_mlp", "OK"), 0) > 0, f"replica {replica['index']} answered no request: {counts}"
            for entrypoint in ("REST", "GRPC"):
                assert (
                    f':tensorflow:serving:request_latency_count{{model_name="digits_mlp",API="Predict",'
                    f'entrypoint="{entrypoint}"}}' in page.text
                )
    finally:
        _stop(entry["pids"])


def test_k8s_manifests_of_the_trained_run(trained: Path):
    proc = tfrun(
        "job=k8s",
        "source=runs/train",
        "k8s.model_uri=gs://bucket/models/digits_mlp",
        "hydra.run.dir=runs/k8s",
        cwd=trained,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record, train = read_record(trained / "runs" / "k8s"), read_record(trained / "runs" / "train")
    assert record["status"] == "succeeded" and record["source"]["run_id"] == train["run_id"]
    assert "train" not in [s["name"] for s in record["steps"]]
    deployment = yaml.safe_load((trained / "runs" / "k8s" / "k8s" / "deployment.yaml").read_text())
    annotations = deployment["metadata"]["annotations"]
    assert annotations["tfrun/source-run-id"] == train["run_id"] and annotations["tfrun/model-version"] == "1"
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--model_name=digits_mlp" in args and "--model_base_path=gs://bucket/models/digits_mlp" in args
    assert not any(v.get("persistentVolumeClaim") for v in deployment["spec"]["template"]["spec"]["volumes"])
