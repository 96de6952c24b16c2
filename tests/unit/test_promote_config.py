"""job=promote's rules and MLflow's alias and reference rules, checked before anything connects
(tfrun.runner.config.promote, tfrun.tasks.promote, tfrun.tasks.registry.config), and a registry version brought
here resolving as a deploy source (tfrun.tasks.core.sources)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tfrun.tasks import promote
from tfrun.tasks.core import sources
from tfrun.tasks.core.files import sha256_file
from tfrun.tasks.core.plans import JOB_STEPS
from tfrun.tasks.core.problems import ConfigError
from tfrun.tasks.registry import config as registry_config


def _problems(compose_cfg, *overrides: str) -> dict[str, str]:
    from tfrun.runner.config.validate import validate

    try:
        validate(compose_cfg(*overrides))
    except ConfigError as err:
        return {p.key: str(p) for p in err.problems}
    return {}


def test_job_promote_needs_an_alias_and_a_source_a_registry_promotes(compose_cfg):
    assert _problems(compose_cfg, "job=promote", "source=models:/digits_mlp/2", "alias=champion") == {}
    assert _problems(compose_cfg, "job=promote", "source=models:/digits_mlp@staging", "alias=champion") == {}
    missing = _problems(compose_cfg, "job=promote", "source=models:/digits_mlp/2")
    assert set(missing) == {"alias"} and "alias=champion" in missing["alias"]
    nothing = _problems(compose_cfg, "job=promote", "alias=champion")
    assert set(nothing) == {"source"} and "models:/NAME/VERSION" in nothing["source"]
    other = _problems(compose_cfg, "job=promote", "source=runs/x", "alias=champion")
    assert set(other) == {"source"} and promote.accepted() in other["source"]
    deploying = _problems(compose_cfg, "job=promote", "source=models:/m/1", "alias=champion", "target=tflite")
    assert set(deploying) == {"source"} and "target=tflite" in deploying["source"]
    assert set(_problems(compose_cfg, "alias=champion")) == {"alias"}  # job=train moves no alias
    assert "null unless job=deploy" in _problems(compose_cfg, "source=runs/x")["source"]
    assert JOB_STEPS["promote"] == ["promote"]


@pytest.mark.parametrize(
    "alias, why",
    [
        ("latest", "reserved by MLflow"),
        ("V3", "reserved by MLflow"),
        ("two words", "characters other than"),
        ("champion!", "characters other than"),
        ("x" * 256, "longer than 255"),
    ],
)
def test_an_alias_mlflow_refuses_is_exit_2_naming_the_rule(compose_cfg, alias: str, why: str):
    found = _problems(compose_cfg, "job=promote", "source=models:/digits_mlp/2", f"alias='{alias}'")
    assert set(found) == {"alias"} and why in found["alias"] and "letters, digits, '_' and '-'" in found["alias"]


def test_references_parse_to_a_version_or_an_alias():
    assert registry_config.parse("models:/digits_mlp/2") == registry_config.Reference(
        "models:/digits_mlp/2", "digits_mlp", 2
    )
    ref = registry_config.parse(" models:/digits_mlp@champion ")
    assert (ref.name, ref.version, ref.alias) == ("digits_mlp", None, "champion")
    for bad in ("models:/digits_mlp", "models:/digits_mlp/0", "models:/a/b/1", "models:/@champion", "models:/m/v2"):
        with pytest.raises(ValueError, match="models:/NAME/VERSION or models:/NAME@ALIAS"):
            registry_config.parse(bad)
    with pytest.raises(ValueError, match="reserved by MLflow"):
        registry_config.parse("models:/m@latest")


def test_a_malformed_reference_to_promote_is_a_config_error(compose_cfg):
    found = _problems(compose_cfg, "job=promote", "source=models:/digits_mlp", "alias=champion")
    assert set(found) == {"source"} and "models:/NAME/VERSION or models:/NAME@ALIAS" in found["source"]


def test_the_registry_is_track_mlflows_store_else_the_environments_else_the_local_one(compose_cfg, monkeypatch):
    from omegaconf import OmegaConf

    monkeypatch.delenv(registry_config.URI_ENV, raising=False)
    assert registry_config.registry_uri(OmegaConf.create({"name": "none"})) == "sqlite:///mlflow.db"
    monkeypatch.setenv(registry_config.URI_ENV, "http://127.0.0.1:5000")
    assert registry_config.registry_uri(OmegaConf.create({"name": "none"})) == "http://127.0.0.1:5000"
    tracked = compose_cfg("track=mlflow", "track.uri=http://127.0.0.1:7000").track
    assert registry_config.registry_uri(tracked) == "http://127.0.0.1:7000"


def test_a_version_brought_here_deploys_as_its_reference_with_its_runs_record(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / ".tfrun-registry/digits_mlp/2"
    model = folder / sources.REGISTRY_SAVED_MODEL
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"graph")
    (model / "variables/variables.index").write_bytes(b"index")
    files = [
        {"path": p.relative_to(model).as_posix(), "sha256": sha256_file(p)}
        for p in sorted(q for q in model.rglob("*") if q.is_file())
    ]
    record = {
        "run_id": "r2",
        "weights_sha256": "w" * 64,
        "config": {"data": {"name": "digits"}},
        "artifacts": [
            {
                "kind": "saved_model",
                "path": "models/digits_mlp/0002",
                "model_name": "digits_mlp",
                "sha256": sources.tree_sha256(files),
                "files": files,
            }
        ],
    }
    (folder / "record.json").write_text(json.dumps(record))
    marker = {"reference": "models:/digits_mlp@champion", "registry": "mlflow", "name": "digits_mlp", "version": 2}
    (folder / sources.REGISTRY_MARKER).write_text(json.dumps({**marker, "alias": "champion", "uri": "http://h:1"}))
    source = sources.resolve(".tfrun-registry/digits_mlp/2")
    assert source.kind == "registry" and source.given == "models:/digits_mlp@champion"
    assert source.data_config == {"name": "digits"} and source.model_name == "digits_mlp"
    link = source.link(sources.check(source))
    assert link["sha256"] == link["recorded_sha256"] and link["run_id"] == "r2"
    assert link["given"] == "models:/digits_mlp@champion"
    assert link["registry"]["version"] == 2 and link["registry"]["name"] == "digits_mlp"
    (model / "variables/variables.index").write_bytes(b"changed")
    with pytest.raises(sources.SourceError, match="has changed since the export"):
        sources.check(sources.resolve(".tfrun-registry/digits_mlp/2"))


def test_track_register_needs_track_mlflow_and_a_job_that_exports(compose_cfg):
    alone = _problems(compose_cfg, "track.register=true")
    assert set(alone) == {"track.register"} and "false unless track=mlflow" in alone["track.register"]
    deploying = _problems(compose_cfg, "track=mlflow", "track.register=true", "job=deploy", "source=x", "target=tflite")
    assert set(deploying) == {"track.register"} and "job=deploy" in deploying["track.register"]
    assert _problems(compose_cfg, "track=mlflow", "track.register=true") == {}


@pytest.mark.parametrize(
    "overrides, words",
    [
        (["track.register=true"], ["track.register", "false unless track=mlflow"]),
        (["job=promote", "source=models:/digits_mlp/2"], ["alias", "alias=champion"]),
        (["job=promote", "source=models:/digits_mlp/2", "alias=latest"], ["alias", "reserved by MLflow"]),
        (["job=promote", "source=runs/x", "alias=champion"], ["source", "models:/NAME/VERSION"]),
    ],
)
def test_the_command_refuses_them_offline_before_anything_runs(workdir: Path, overrides: list[str], words: list[str]):
    from tests.helpers import assert_rejected_offline

    assert_rejected_offline(overrides, words, workdir)


def test_records_show_says_what_was_registered_promoted_and_deployed_from_the_registry():
    from tfrun.runner.records import show_cli

    registry = {"name": "digits_mlp", "version": 2, "alias": "champion"}
    source = {"given": "models:/digits_mlp@champion", "saved_model": "x", "registry": registry}
    data = {
        "artifacts": [],
        "weights_sha256": None,
        "source": source,
        "registry": {"reference": "models:/digits_mlp/3", "version": 3, "model": "digits_mlp", "uri": "http://h:1"},
        "promotion": {
            "model": "digits_mlp",
            "alias": "champion",
            "previous_version": 1,
            "version": 2,
            "registry": "mlflow",
        },
    }
    text = "\n".join(show_cli.artifact_lines(data))
    assert "models:/digits_mlp@champion → digits_mlp version 2" in text
    assert "registered models:/digits_mlp/3 (version 3 of digits_mlp) at http://h:1" in text
    assert "promotion  digits_mlp@champion: version 1 → 2 (mlflow)" in text
