"""Vertex AI Model Registry through the real `tfrun` and `tfrun-records` commands, offline (the Vertex test server
driven by the real SDK, a GCS emulator): two deploys of one model_name are versions of one Model, `job=promote`
moves an alias and the endpoint's traffic (and back), and `tfrun-records cleanup` removes what tfrun made and
leaves a version someone else uploaded."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.vertex.fixture import init_sdk, reset_sdk
from tests.helpers import BIN, cloud_args, command_env, copy_trained, read_record
from tests.helpers import CLOUD_PROJECT as PROJECT

pytestmark = [pytest.mark.slow, pytest.mark.e2e]

IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-15:latest"


def _run(workdir: Path, command: str, *args: str, timeout: float = 420) -> subprocess.CompletedProcess:
    env = command_env()
    env.pop("STORAGE_EMULATOR_HOST", None)  # the config alone must reach the emulator
    return subprocess.run(
        [str(BIN / command), *args], cwd=workdir, env=env, capture_output=True, text=True, timeout=timeout
    )


def _tfrun(workdir: Path, name: str, *args: str) -> dict[str, Any]:
    proc = _run(workdir, "tfrun", *args, f"hydra.run.dir=runs/{name}")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = read_record(workdir / "runs" / name)
    assert record["status"] == "succeeded", record.get("error")
    return record


def _rejected(workdir: Path, name: str, args: list[str], words: list[str]) -> None:
    proc = _run(workdir, "tfrun", "job=promote", *args, f"hydra.run.dir=runs/{name}", timeout=120)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr
    assert not (workdir / "runs" / name).exists(), "a rejected promote leaves no run dir"


def _entry(record: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(d for d in record["deployments"] if d["kind"] == kind)


def _resources(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["kind"] + ("" if r["created"] else ":reused"): r for r in record["cloud_resources"]}


@pytest.mark.timeout(1500)  # four runs (two deploys, two promotes) and a clean-up
def test_versions_promote_traffic_and_cleanup(trained_digits: Path, workdir: Path, fake_vertex: Any, gcs_emulator: Any):
    from google.cloud import aiplatform

    cloud = cloud_args(fake_vertex, gcs_emulator, "e2e-registry")
    copy_trained(trained_digits, workdir)  # the suite's shared trained run (no cloud); both deploys read it

    first = _tfrun(workdir, "deploy1", "job=deploy", "source=runs/train", "target=vertex_endpoint",
                   "target.latency_requests=2", *cloud)  # fmt: skip
    one = _entry(first, "vertex_endpoint")
    model, endpoint = one["model"], one["endpoint"]
    assert one["model_version"] == "1" and one["version_aliases"] == ["default"]
    assert _resources(first)["model"]["created"] and "new Model" in _step(first, "vertex_model")
    assert "no Model 'digits_mlp' of tfrun's yet: a new model will be registered" in _step(first, "vertex_preflight")

    init_sdk(fake_vertex, PROJECT)
    try:  # a version tfrun did not make: no tfrun label, not the default
        by_hand = aiplatform.Model.upload(
            display_name="digits_mlp",
            artifact_uri=one["model_uri"],
            serving_container_image_uri=IMAGE,
            parent_model=model,
            is_default_version=False,
            version_aliases=["by-hand"],
        )
        assert by_hand.version_id == "2"

        second = _tfrun(workdir, "deploy2", "job=deploy", "source=runs/train", "target=vertex_batch",
                        "target.version_aliases=[candidate]", "target.poll_interval_s=0.5", *cloud)  # fmt: skip
        two = _entry(second, "vertex_batch")
        assert two["model"] == model and two["model_version"] == "3", two
        assert two["version_aliases"] == ["candidate", "default"]
        found = _resources(second)
        assert found["model:reused"]["name"] == model and found["model_version"]["name"] == f"{model}@3"
        assert f"new version 3 of {model}" in _step(second, "vertex_model")
        assert f"({model}): the upload will be a new version of it" in _step(second, "vertex_preflight")
        assert _aliases(aiplatform, model) == {"1": [], "2": ["by-hand"], "3": ["candidate", "default"]}

        # mistakes are exit 2, one line, before anything is recorded
        _rejected(workdir, "bad-version", [f"source={model}@9", "alias=champion", "target=vertex_endpoint", *cloud],
                  ["no such version", "its versions: 1, 2 (by-hand), 3 (candidate, default)"])  # fmt: skip
        _rejected(workdir, "bad-alias", ["source=runs/deploy2", "alias=Champion_1", "target=vertex_endpoint", *cloud],
                  ["alias='Champion_1'", "Vertex version alias"])  # fmt: skip
        _rejected(workdir, "no-endpoint", ["source=runs/deploy2", "alias=champion", "target=vertex_endpoint",
                  "target.endpoint=nowhere", *cloud], ["target.endpoint='nowhere'", "an endpoint that exists"])  # fmt: skip
        dry = _run(workdir, "tfrun", "job=promote", "source=runs/deploy2", "alias=champion",
                   "target=vertex_endpoint", "cloud.dry_run=true", *cloud, "hydra.run.dir=runs/dry")  # fmt: skip
        assert dry.returncode == 0 and f"version     {model}@3" in dry.stdout, dry.stdout + dry.stderr
        assert "100 % to the promoted version" in dry.stdout and not (workdir / "runs/dry").exists()

        # a deploy that fails: the run fails, the alias and the traffic stay as they were
        fake_vertex.fail("POST", r":deployModel$", mode="operation", message="Machine type temporarily unavailable.")
        failed = _run(workdir, "tfrun", "job=promote", "source=runs/deploy2", "alias=champion",
                      "target=vertex_endpoint", *cloud, "hydra.run.dir=runs/failed")  # fmt: skip
        assert failed.returncode == 1, failed.stdout[-3000:] + failed.stderr[-3000:]
        assert read_record(workdir / "runs/failed")["status"] == "failed"
        assert _traffic(aiplatform, endpoint) == {one["deployed_model_id"]: 100}
        assert "champion" not in sum(_aliases(aiplatform, model).values(), [])

        # promote version 3 (deployed by no one yet): deployed on deploy1's endpoint, all traffic to it
        promoted = _tfrun(workdir, "promote", "job=promote", "source=runs/deploy2", "alias=champion",
                          "target=vertex_endpoint", *cloud)  # fmt: skip
        p = promoted["promotion"]
        old, new = one["deployed_model_id"], p["deployed_model_id"]
        assert (p["registry"], p["model"], p["version"], p["previous_version"]) == ("vertex", model, "3", None)
        assert p["deployed"] and p["endpoint"] == endpoint and p["traffic_before"] == {old: 100}
        assert _traffic(aiplatform, endpoint) == {new: 100}
        assert {m.id for m in aiplatform.Endpoint(endpoint).list_models()} == {old, new}  # old kept, at 0 %
        assert _aliases(aiplatform, model)["3"] == ["candidate", "default", "champion"]
        assert _resources(promoted)["deployed_model"]["status"] == "left"

        # and back: version 1 is deployed already; its traffic returns, version 3's deployment goes
        back = _tfrun(workdir, "rollback", "job=promote", f"source={model}@1", "alias=champion",
                      "target=vertex_endpoint", "target.undeploy_previous=true", *cloud)  # fmt: skip
        b = back["promotion"]
        assert (b["version"], b["previous_version"], b["deployed"], b["undeployed"]) == ("1", "3", False, [new])
        assert p["undo"] is None and b["undo"] == f"source={model}@3 alias=champion target=vertex_endpoint"
        assert _traffic(aiplatform, endpoint) == {old: 100}
        assert _aliases(aiplatform, model) == {"1": ["champion"], "2": ["by-hand"], "3": ["candidate", "default"]}
    finally:
        reset_sdk()

    done = _run(workdir, "tfrun-records", "cleanup", "--all", "runs", "--yes", timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    state = fake_vertex.state()
    assert [(m["name"], m["versionId"], sorted(m["versionAliases"])) for m in state["models"]] == [
        (model, "2", ["by-hand", "default"])
    ], state["models"]
    assert state["endpoints"] == [] and state["batchPredictionJobs"] == []
    for run in ("deploy1", "deploy2", "promote"):
        left = [r for r in read_record(workdir / "runs" / run)["cloud_resources"] if r["created"]]
        assert left and all(r["status"] == "removed" for r in left), left


def _step(record: dict[str, Any], name: str) -> str:
    return next(s["result"]["summary"] for s in record["steps"] if s["name"] == name)


def _traffic(aiplatform: Any, endpoint: str) -> dict[str, int]:
    return {k: int(v) for k, v in dict(aiplatform.Endpoint(endpoint).traffic_split).items()}


def _aliases(aiplatform: Any, model: str) -> dict[str, list[str]]:
    return {v.version_id: list(v.version_aliases) for v in aiplatform.models.ModelRegistry(model).list_versions()}
