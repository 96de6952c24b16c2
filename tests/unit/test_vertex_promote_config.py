"""job=promote target=vertex_endpoint's offline rules (tfrun.tasks.vertex.promote): which sources name a Vertex
version, the alias's form, the record a source points at, and the dry run's plan; no SDK, no connection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfrun.tasks import promote
from tfrun.tasks.core.problems import ConfigError
from tfrun.tasks.vertex import promote as vertex_promote

GCP = ["cloud=gcp", "cloud.project=my-project", "cloud.bucket=my-models"]
MODEL = "projects/123456789012/locations/us-central1/models/42"
ENDPOINT = "projects/123456789012/locations/us-central1/endpoints/7"


def _problems(compose_cfg, *overrides: str) -> dict[str, str]:
    from tfrun.runner.config.validate import validate

    try:
        validate(compose_cfg("job=promote", "target=vertex_endpoint", *GCP, *overrides))
    except ConfigError as err:
        return {p.key: str(p) for p in err.problems}
    return {}


def _record(folder: Path, status: str = "succeeded", **entry: object) -> Path:
    folder.mkdir(parents=True)
    deployment = {"kind": "vertex_batch", "model": MODEL, "model_version": "3", **entry}
    resources = [{"kind": "model_version", "name": f"{MODEL}@3", "created": True, "status": "left"}]
    (folder / "record.json").write_text(
        json.dumps({"status": status, "deployments": [deployment], "cloud_resources": resources})
    )
    return folder


def test_the_vertex_promoter_takes_target_vertex_endpoint_sources():
    assert promote.for_source(f"{MODEL}@3", "vertex_endpoint").name == "vertex"
    assert promote.for_source("runs/x", "vertex_endpoint").name == "vertex"
    assert promote.for_source(f"{MODEL}@3", "none") is None
    assert "projects/…/models/ID@VERSION" in promote.accepted()


def test_a_version_name_or_a_deploy_record(compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert _problems(compose_cfg, f"source={MODEL}@3", "alias=champion") == {}
    assert _problems(compose_cfg, f"source={MODEL}@champion", "alias=default") == {}  # default moves too
    _record(tmp_path / "runs/deploy")
    assert vertex_promote.resolve("runs/deploy") == vertex_promote.VertexSource(
        MODEL, "3", None, "runs/deploy/record.json"
    )
    _record(tmp_path / "runs/endpoint", kind="vertex_endpoint", endpoint=ENDPOINT)
    assert vertex_promote.resolve("runs/endpoint/record.json").endpoint == ENDPOINT

    bad = {
        f"source={MODEL}": "is not projects/PROJECT/locations/REGION/models/ID@VERSION",
        "source=runs/gone": "runs/gone does not exist",
        "source=runs/failed": "is a failed run",
        "source=runs/tflite": "has no Vertex deployment",
    }
    _record(tmp_path / "runs/failed", status="failed")
    (tmp_path / "runs/tflite").mkdir()
    (tmp_path / "runs/tflite/record.json").write_text(json.dumps({"status": "succeeded", "deployments": []}))
    for source, words in bad.items():
        found = _problems(compose_cfg, source, "alias=champion")
        assert set(found) == {"source"} and words in found["source"], found


@pytest.mark.parametrize("alias", ["Champion", "9", "a", "champion-", "x" * 129])
def test_an_alias_vertex_would_refuse(compose_cfg, alias: str):
    found = _problems(compose_cfg, f"source={MODEL}@3", f"alias={alias}")
    assert set(found) == {"alias"} and "Vertex version alias" in found["alias"], found


def test_the_dry_run_plan(compose_cfg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from tfrun.runner import dry_run
    from tfrun.runner.config.validate import validate

    monkeypatch.chdir(tmp_path)
    _record(tmp_path / "runs/deploy")
    config = validate(
        compose_cfg(
            "job=promote",
            "target=vertex_endpoint",
            *GCP,
            "cloud.dry_run=true",
            "source=runs/deploy",
            "alias=champion",
            "target.undeploy_previous=true",
        )
    )
    text = "\n".join(dry_run.lines(config, "run-1", []))
    for words in (
        f"{MODEL}@3 (from runs/deploy/record.json)",
        "display name 'digits_mlp-endpoint' (target.endpoint)",
        "100 % to the promoted version",
        "undeployed (target.undeploy_previous=true)",
        "'champion' added to the promoted version",
    ):
        assert words in text, text
