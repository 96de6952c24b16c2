"""The pure-Python Vertex tables (used for validation and the dry-run plan) agree with the SDK's own."""

from __future__ import annotations

import pytest

from tfrun.tasks.core import vertex_catalog as catalog


@pytest.mark.parametrize("region", ["us-central1", "europe-west4", "asia-east1"])
@pytest.mark.parametrize("gpu", [False, True])
def test_prebuilt_image_is_the_sdks_newest_tensorflow_image(region: str, gpu: bool):
    from google.cloud.aiplatform import helpers
    from google.cloud.aiplatform.constants import prediction

    versions = prediction._SERVING_CONTAINER_URI_MAP["us"]["tensorflow"]["cpu"]
    newest = max(versions, key=lambda v: tuple(int(p) for p in v.split(".")))
    assert newest == catalog.PREBUILT_TF_PREDICTION_VERSION
    expected = helpers.get_prebuilt_prediction_container_uri("tensorflow", newest, region, "gpu" if gpu else "cpu")
    assert catalog.prebuilt_prediction_image(region, gpu) == expected


@pytest.mark.parametrize("region", ["australia-southeast1", "northamerica-northeast1", "me-west1"])
def test_regions_without_prebuilt_images_are_refused_like_the_sdk(region: str):
    from google.cloud.aiplatform import helpers

    with pytest.raises(ValueError):
        helpers.get_prebuilt_prediction_container_uri("tensorflow", "2.15", region, "cpu")
    assert catalog.region_problem(region)


@pytest.mark.parametrize(
    "machine, accelerator, count, ok",
    [
        ("n1-standard-4", None, 0, True),
        ("n1-standard-4", "NVIDIA_TESLA_T4", 1, True),
        ("n1-highmem-8", "NVIDIA_TESLA_V100", 8, True),
        ("n1-standard-4", "NVIDIA_TESLA_T4", 3, False),
        ("n1-standard-4", "NVIDIA_L4", 1, False),
        ("e2-standard-4", "NVIDIA_TESLA_T4", 1, False),
        ("a2-highgpu-2g", "NVIDIA_TESLA_A100", 2, True),
        ("a2-highgpu-2g", "NVIDIA_TESLA_A100", 1, False),
        ("g2-standard-24", "NVIDIA_L4", 2, True),
        ("n1-standard-4", None, 1, False),
    ],
)
def test_accelerator_rules(machine: str, accelerator, count: int, ok: bool):
    assert (catalog.accelerator_problem(machine, accelerator, count) is None) == ok


@pytest.mark.parametrize(
    "name, ok",
    [
        ("my-models", True),
        ("a.b.c", True),
        ("ab", False),
        ("Models", False),
        ("-models", False),
        ("goog-x", False),
        ("my-google-x", False),
        ("192.168.1.1", False),
        ("x" * 64, False),
        ("a_b-c.d", True),
    ],
)
def test_bucket_names(name: str, ok: bool):
    assert (catalog.bucket_problem(name) is None) == ok


def test_labels_are_valid_label_values():
    assert catalog.label_value("20261129-101500-Ab12cd/x") == "20261129-101500-ab12cd-x"
    assert not list(catalog.label_problems({"run": catalog.label_value("R" * 80)}))
    assert list(catalog.label_problems({"tfrun-run-id": "x"})), "tfrun's own label keys are reserved"
