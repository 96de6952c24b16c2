"""job=deploy's source, resolved and hash-checked without TensorFlow (tfrun.tasks.core.sources) and adopted into
the composed config by the runner (tfrun.runner.config.deploy): fake SavedModel folders, real records' shape."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from tfrun.runner.config import deploy
from tfrun.tasks.core import sources
from tfrun.tasks.core.files import sha256_file
from tfrun.tasks.core.problems import ConfigError

DATA = "variables/variables.data-00000-of-00001"


def _export(root: Path, rel: str = "models/digits_mlp/0003") -> Path:
    folder = root / rel
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / DATA).write_bytes(b"weights" * 100)
    (folder / "variables/variables.index").write_bytes(b"index")
    return folder


def _record(root: Path, run: str, folder: Path, status: str = "succeeded", metric: float = 0.9) -> Path:
    files = [
        {"path": p.relative_to(folder).as_posix(), "sha256": sha256_file(p), "bytes": p.stat().st_size}
        for p in sorted(q for q in folder.rglob("*") if q.is_file())
    ]
    record = {
        "run_id": f"id-{run.replace('/', '-')}",
        "status": status,
        "started_at": "2026-01-01T00:00:00+00:00",
        "config": {
            "data": {"_target_": "tfrun.tasks.data.load_digits", "name": "digits", "limit": 500},
            "optimized_metric": "holdout_accuracy",
        },
        "metrics": {"final": {"holdout_accuracy": metric}},
        "weights_sha256": "w" * 64,
        "artifacts": [
            {
                "kind": "saved_model",
                "path": folder.relative_to(root).as_posix(),
                "model_name": "digits_mlp",
                "version": 3,
                "sha256": sources.tree_sha256(files),
                "files": files,
            }
        ],
    }
    path = root / run / "record.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_run_dir_and_its_record_resolve_to_the_export_with_its_data_config(here: Path):
    folder = _export(here)
    _record(here, "runs/day/train", folder)
    for given in ("runs/day/train", "runs/day/train/record.json"):
        source = sources.resolve(given)
        assert source.kind == "run" and source.saved_model.resolve() == folder.resolve()
        assert source.data_config["limit"] == 500 and source.model_name == "digits_mlp"
        link = source.link(sources.check(source))
        assert link["run_id"] == "id-runs-day-train" and link["saved_model"] == "models/digits_mlp/0003"
        assert link["sha256"] == link["recorded_sha256"] and link["weights_sha256"] == "w" * 64


def test_a_saved_model_folder_finds_the_run_that_exported_it_or_has_no_record(here: Path):
    folder = _export(here)
    _record(here, "runs/day/train", folder)
    found = sources.resolve("models/digits_mlp/0003")
    assert found.kind == "saved_model" and found.record_path is not None
    assert found.record_path.resolve() == (here / "runs/day/train/record.json").resolve()
    other = _export(here, "models/digits_mlp/0004")
    _record(here, "runs/named", other)  # hydra.run.dir=runs/NAME: one level, found too
    assert sources.resolve("models/digits_mlp/0004").record_path.resolve() == (here / "runs/named/record.json")
    alone = _export(here, "elsewhere/0001")
    source = sources.resolve(str(alone))
    assert source.record is None and source.data_config is None and source.model_name == "elsewhere"
    assert len(sources.check(source)) == 64  # no record: the shape is checked, the hash still made


def test_multirun_best_is_the_job_the_sweep_summary_names_else_the_best_metric(here: Path):
    for job, metric in (("0", 0.7), ("1", 0.95), ("2", 0.8)):
        _record(here, f"multiruns/d/t/{job}", _export(here, f"models/m{job}/0001"), metric=metric)
    assert sources.resolve("multiruns/d/t/best").saved_model == Path("models/m1/0001")
    (here / "multiruns/d/t/sweep.json").write_text(json.dumps({"best": {"job": "2"}}))
    source = sources.resolve("multiruns/d/t/best")
    assert source.kind == "sweep_best" and source.saved_model == Path("models/m2/0001")


def test_a_changed_byte_names_the_file_and_a_missing_or_plain_folder_names_the_path(here: Path):
    folder = _export(here)
    _record(here, "runs/day/train", folder)
    data = folder / DATA
    data.write_bytes(b"x" + data.read_bytes()[1:])
    with pytest.raises(sources.SourceError, match=r"variables\.data-00000-of-00001 has changed since the export"):
        sources.check(sources.resolve("runs/day/train"))
    with pytest.raises(sources.SourceError, match="runs/nothing does not exist"):
        sources.resolve("runs/nothing")
    (here / "plain").mkdir()
    with pytest.raises(sources.SourceError, match="has no saved_model.pb"):
        sources.check(sources.resolve("plain"))
    with pytest.raises(sources.SourceError, match="read through the registry's client"):
        sources.resolve("models:/digits@champion")


def test_a_file_added_or_removed_since_the_export_is_named_but_tf_servings_warmup_is_not(here: Path):
    folder = _export(here)
    _record(here, "runs/day/train", folder)
    (folder / "assets.extra").mkdir()
    (folder / "assets.extra/tf_serving_warmup_requests").write_bytes(b"warm")
    recorded = json.loads((here / "runs/day/train/record.json").read_text())["artifacts"][0]["sha256"]
    assert sources.check(sources.resolve("runs/day/train")) == recorded  # the warm-up file is not the model's
    (folder / "variables/variables.index").unlink()
    with pytest.raises(sources.SourceError, match=r"variables\.index is missing"):
        sources.check(sources.resolve("runs/day/train"))


def test_the_runner_adopts_the_source_runs_data_and_name_unless_the_command_line_gives_them(here: Path):
    folder = _export(here)
    _record(here, "runs/day/train", folder)
    cfg = OmegaConf.create({"job": "deploy", "source": "runs/day/train", "data": {"name": "mnist"}, "model_name": "x"})
    deploy.prepare(cfg, ["job=deploy", "source=runs/day/train"])
    assert cfg.data.limit == 500 and cfg.data.name == "digits" and cfg.model_name == "digits_mlp"
    cfg = OmegaConf.create({"job": "deploy", "source": "runs/day/train", "data": {"name": "mnist"}, "model_name": "x"})
    deploy.prepare(cfg, ["data=mnist", "model_name=x"])
    assert cfg.data.name == "mnist" and cfg.model_name == "x"
    alone = _export(here, "elsewhere/0001")
    cfg = OmegaConf.create({"job": "deploy", "source": str(alone), "data": {"name": "digits"}, "model_name": "x"})
    with pytest.raises(ConfigError, match="data=… on the command line"):
        deploy.prepare(cfg, [f"source={alone}"])
    deploy.prepare(cfg, [f"source={alone}", "data=digits"])
    folder.joinpath(DATA).write_bytes(b"changed")
    cfg = OmegaConf.create({"job": "deploy", "source": "runs/day/train", "data": {}, "model_name": "x"})
    with pytest.raises(ConfigError, match=r"source='runs/day/train'.*variables\.data-00000-of-00001 has changed"):
        deploy.prepare(cfg, [])


def test_a_vertex_training_run_resolves_to_the_model_it_downloaded_and_hash_checked(here: Path):
    folder = _export(here)
    path = _record(here, "runs/vertex", folder)
    record = json.loads(path.read_text())
    local = {**record["artifacts"][0], "source": "gs://bucket/job/model/"}  # tasks/vertex/training.py result_step
    gcs = {"kind": "gcs_model", "path": "gs://bucket/job/model/", "sha256": local["sha256"], "bytes": 1}
    record["artifacts"] = [local, gcs]
    path.write_text(json.dumps(record))
    source = sources.resolve("runs/vertex")
    assert source.saved_model == Path("models/digits_mlp/0003") and sources.check(source) == local["sha256"]


def test_records_show_names_a_deploys_source():
    from tfrun.runner.records import show_cli

    source = {"saved_model": "models/m/0003", "sha256": "a" * 64, "run_id": "r1", "record": "runs/t/record.json"}
    lines = show_cli.artifact_lines({"artifacts": [], "weights_sha256": None, "source": source})
    assert any(line.startswith("source") and "models/m/0003" in line and "from run r1" in line for line in lines)


def test_job_deploy_rules_on_the_rest_of_the_config(compose_cfg, here: Path):
    from tfrun.runner.config.validate import validate

    def keys(*overrides: str) -> set[str]:
        try:
            validate(compose_cfg(*overrides))
        except ConfigError as err:
            return {p.key for p in err.problems}
        return set()

    assert keys("job=deploy", "source=x", "target=tflite") == set()
    assert keys("job=deploy", "source=x") == {"target"}  # target=none deploys nothing
    assert keys("job=deploy", "source=x", "target=tflite", "target.source=keras") == {"target.source"}
    assert keys("job=deploy", "source=x", "target=tflite", "cluster=local", "strategy=multi_worker") >= {"cluster"}
    assert keys("source=runs/x") == {"source"}  # job=train reads no source


def test_a_record_given_from_another_folder_finds_its_export_beside_its_run(here: Path, monkeypatch):
    project = here / "project"
    folder = _export(project)
    path = _record(project, "runs/day/train", folder)
    record = json.loads(path.read_text())
    record["run_dir"] = "runs/day/train"
    path.write_text(json.dumps(record))
    (here / "elsewhere").mkdir()
    monkeypatch.chdir(here / "elsewhere")
    source = sources.resolve(str(path))
    assert source.saved_model.resolve() == folder.resolve()
    assert sources.check(source) == record["artifacts"][0]["sha256"]


def test_a_record_from_another_folder_is_not_matched_with_this_folders_export_of_the_same_path(here: Path):
    """Here has its own models/digits_mlp/0003 (another model): a record given from project/ still names project's."""
    project = here / "project"
    folder = _export(project)
    path = _record(project, "runs/train", folder)
    record = json.loads(path.read_text())
    record["run_dir"] = "runs/train"
    path.write_text(json.dumps(record))
    mine = _export(here)
    (mine / DATA).write_bytes(b"other weights")
    source = sources.resolve("project/runs/train")
    assert source.saved_model.resolve() == folder.resolve()
    assert sources.check(source) == record["artifacts"][0]["sha256"]
