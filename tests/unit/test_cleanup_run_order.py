"""`tfrun-records cleanup` over several runs: a run goes before the run whose bucket or endpoint holds its resources."""

from __future__ import annotations

from typing import Any

from tfrun.runner.records.cleanup_cli import in_dependency_order

ENDPOINT = "projects/p/locations/us-central1/endpoints/7"


def _run(name: str, *resources: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return name, {"cloud_resources": [{"created": True, "status": "left", **r} for r in resources]}


def _order(*runs: tuple[str, dict[str, Any]]) -> list[str]:
    return [name for name, _ in in_dependency_order(list(runs))]


def test_a_deployment_on_another_runs_endpoint_goes_first():
    maker = _run("a", {"kind": "endpoint", "name": ENDPOINT}, {"kind": "bucket", "name": "gs://b"})
    user = _run(
        "b", {"kind": "deployed_model", "name": f"{ENDPOINT}/deployedModels/1", "details": {"endpoint": ENDPOINT}}
    )
    assert _order(maker, user) == ["b", "a"]


def test_objects_in_another_runs_bucket_go_first_and_unrelated_runs_keep_their_order():
    maker = _run("a", {"kind": "bucket", "name": "gs://b"}, {"kind": "gcs_objects", "name": "gs://b/tfrun/m/0001/"})
    other = _run("c", {"kind": "gcs_objects", "name": "gs://elsewhere/x/"})
    user = _run("d", {"kind": "gcs_objects", "name": "gs://b/tfrun/m/0002/"})
    assert _order(maker, other, user) == ["c", "d", "a"]
    assert _order(other, user) == ["c", "d"]


def test_removed_resources_and_cycles_change_nothing():
    maker = _run("a", {"kind": "bucket", "name": "gs://b"})
    gone = _run("b", {"kind": "gcs_objects", "name": "gs://b/x/", "status": "removed"})
    assert _order(maker, gone) == ["a", "b"]
    one = _run("a", {"kind": "bucket", "name": "gs://b"}, {"kind": "gcs_objects", "name": "gs://c/x/"})
    two = _run("b", {"kind": "bucket", "name": "gs://c"}, {"kind": "gcs_objects", "name": "gs://b/x/"})
    assert sorted(_order(one, two)) == ["a", "b"]
