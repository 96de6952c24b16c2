"""Cloud configs are checked before anything runs, and a dry run plans without network or SDK.

Each command runs with tests/fakes/offline first on PYTHONPATH: any socket connection or import
of TensorFlow / a Google Cloud SDK is blocked and logged, so "nothing was imported or sent" is
measured, not assumed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.helpers import BIN, ROOT, assert_rejected_offline, command_env, offline_tfrun

GCP = ["cloud=gcp", "cloud.project=my-project", "cloud.bucket=my-models"]
ENDPOINT = ["target=vertex_endpoint", *GCP]
BATCH = ["target=vertex_batch", *GCP]

# (overrides, words the message must contain: key, bad value, what is allowed)
BAD_CLOUD_CONFIGS = [
    pytest.param(["target=vertex_endpoint"], ["cloud", "none", "gcp"], id="endpoint-without-cloud"),
    pytest.param(["target=vertex_batch"], ["cloud", "none", "target.mode=local"], id="batch-without-cloud"),
    pytest.param(
        ["target=vertex_endpoint", "cloud=gcp", "cloud.bucket=b-1x"],
        ["cloud.project", "None", "project id"],
        id="missing-project",
    ),
    pytest.param(
        ["target=vertex_endpoint", "cloud=gcp", "cloud.project=my-project"],
        ["cloud.bucket", "None"],
        id="missing-bucket",
    ),
    pytest.param([*ENDPOINT, "cloud.bucket=My_Bucket"], ["cloud.bucket", "My_Bucket", "lowercase"], id="bucket-case"),
    pytest.param([*ENDPOINT, "cloud.bucket=goog-models"], ["cloud.bucket", "goog-models", "goog"], id="bucket-goog"),
    pytest.param(
        [*ENDPOINT, "cloud.bucket=gs://my-models"], ["cloud.bucket", "gs://my-models", "gs://"], id="bucket-with-scheme"
    ),
    pytest.param(
        [*ENDPOINT, "cloud.region=uscentral"], ["cloud.region", "uscentral", "us-central1"], id="region-format"
    ),
    pytest.param(
        [*ENDPOINT, "cloud.region=australia-southeast1"],
        ["cloud.region", "australia-southeast1", "prebuilt"],
        id="region-without-prebuilt-images",
    ),
    pytest.param(
        [
            *ENDPOINT,
            "target.machine_type=e2-standard-4",
            "target.accelerator_type=NVIDIA_TESLA_T4",
            "target.accelerator_count=1",
        ],
        ["target.accelerator_count", "e2-standard-4", "no accelerators"],
        id="gpu-on-e2",
    ),
    pytest.param(
        [
            *ENDPOINT,
            "target.machine_type=n1-standard-4",
            "target.accelerator_type=NVIDIA_TESLA_T4",
            "target.accelerator_count=3",
        ],
        ["target.accelerator_count", "3", "[1, 2, 4]"],
        id="gpu-count",
    ),
    pytest.param(
        [
            *ENDPOINT,
            "target.machine_type=n1-standard-16",
            "target.accelerator_type=NVIDIA_TESLA_T4",
            "target.accelerator_count=8",
        ],
        ["target.accelerator_count", "8", "[1, 2, 4]"],
        id="too-many-t4",
    ),
    pytest.param(
        [*ENDPOINT, "target.machine_type=a2-highgpu-1g"],
        ["target.accelerator_type", "NVIDIA_TESLA_A100"],
        id="a2-without-its-gpu",
    ),
    pytest.param(
        [*ENDPOINT, "target.machine_type=n1-giant-3"],
        ["target.machine_type", "n1-giant-3", "n1-standard-4"],
        id="unknown-machine",
    ),
    pytest.param([*ENDPOINT, "target.min_replicas=0"], ["target.min_replicas", "0", ">= 1"], id="zero-replicas"),
    pytest.param(
        [*ENDPOINT, "target.min_replicas=3", "target.max_replicas=2"],
        ["target.max_replicas", "2", ">="],
        id="max-below-min",
    ),
    pytest.param(
        [*BATCH, "target.starting_replicas=2", "target.max_replicas=1"],
        ["target.max_replicas", "1"],
        id="batch-max-below-start",
    ),
    pytest.param(
        [*ENDPOINT, "target.traffic_percentage=101"],
        ["target.traffic_percentage", "101", "[1, 100]"],
        id="traffic-over-100",
    ),
    pytest.param(
        [*ENDPOINT, "target.traffic_percentage=-1"], ["target.traffic_percentage", "-1"], id="traffic-negative"
    ),
    pytest.param(
        [*ENDPOINT, "target.traffic_percentage=0"], ["target.traffic_percentage", "0", "[1, 100]"], id="traffic-zero"
    ),
    pytest.param(
        [*ENDPOINT, "target.serving_container=tfrun"],
        ["target.tfrun_image", "None", "pushed"],
        id="tfrun-image-missing",
    ),
    pytest.param(
        [*ENDPOINT, "+cloud.labels.tfrun-run-id=mine"],
        ["cloud.labels.tfrun-run-id", "mine", "tfrun sets"],
        id="reserved-label",
    ),
    pytest.param(
        [*ENDPOINT, "cloud.credentials=missing-key.json"],
        ["cloud.credentials", "missing-key.json", "service-account JSON"],
        id="credentials-file-missing",
    ),
    pytest.param(
        [*ENDPOINT, "cloud.api_endpoint=127.0.0.1:8080"],
        ["cloud.api_endpoint", "127.0.0.1:8080", "http://"],
        id="endpoint-without-scheme",
    ),
    pytest.param([*ENDPOINT, "+cloud.labels.Team=x"], ["cloud.labels.Team", "lowercase"], id="bad-label-key"),
    pytest.param(
        [*ENDPOINT, "target.serving_container=not an image"], ["target.serving_container", "prebuilt"], id="bad-image"
    ),
    pytest.param(
        [*ENDPOINT, "target.max_payload_bytes=2000000"],
        ["target.max_payload_bytes", "1500000"],
        id="payload-over-vertex-limit",
    ),
    pytest.param([*GCP, "cloud.dry_run=true"], ["cloud.dry_run", "cloud target"], id="dry-run-without-cloud-target"),
    pytest.param(
        [*ENDPOINT, "target.version_aliases=[Champion]"],
        ["target.version_aliases", "Champion", "Vertex version alias"],
        id="version-alias-uppercase",
    ),
    pytest.param(
        [*BATCH, "target.version_aliases=[v2,'42']"],
        ["target.version_aliases", "42", "lowercase letter"],
        id="alias-digits",
    ),
    pytest.param(
        [*ENDPOINT, "target.version_aliases=[default]"],
        ["target.version_aliases", "default", "target.default_version"],
        id="version-alias-default",
    ),
]


@pytest.mark.parametrize("overrides, words", BAD_CLOUD_CONFIGS)
def test_bad_cloud_config_exits_2_before_any_sdk_import(workdir: Path, overrides: list[str], words: list[str]):
    assert_rejected_offline(overrides, words, workdir)


@pytest.mark.parametrize("target", ["vertex_endpoint", "vertex_batch"])
def test_dry_run_prints_the_plan_with_the_network_blocked(workdir: Path, target: str):
    log = workdir / "blocked.log"
    proc = offline_tfrun(
        [
            f"target={target}",
            *GCP,
            "cloud.dry_run=true",
            "target.machine_type=n1-standard-4",
            "target.accelerator_type=NVIDIA_TESLA_T4",
            "target.accelerator_count=1",
            "+cloud.labels.team=vision",
        ],
        workdir,
        log,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    for word in (
        "gs://my-models",
        "gs://my-models/tfrun/digits_mlp/0001/",
        "projects/my-project/locations/us-central1",
        "us-docker.pkg.dev/vertex-ai/prediction/tf2-gpu.2-15:latest",
        "n1-standard-4, 1 x NVIDIA_TESLA_T4",
        "tfrun-run-id",
        "'team': 'vision'",
        "older than the TF 2.21",
        "new version of the Model with display name 'digits_mlp' and label tfrun-model=digits_mlp",
    ):
        assert word in out, f"{word!r} missing from the plan:\n{out}"
    assert ("endpoint" in out) == (target == "vertex_endpoint")
    assert ("batchPredictionJobs" in out) == (target == "vertex_batch")
    assert not log.exists(), f"the dry run attempted:\n{log.read_text()}"
    assert not list(workdir.rglob("record.json")) and not (workdir / "models").exists()


def test_offline_blocker_really_blocks(workdir: Path):
    """The guard above would be worthless if a blocked import went unnoticed."""
    log = workdir / "blocked.log"
    env = command_env(TFRUN_OFFLINE_LOG=str(log))
    env["PYTHONPATH"] = str(ROOT / "tests" / "fakes" / "offline")
    proc = subprocess.run(
        [str(BIN / "python"), "-c", "import google.cloud.storage"], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0 and "blocked" in proc.stderr
    assert "import google.cloud.storage" in log.read_text()
