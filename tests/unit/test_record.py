"""Record writing: atomic, redacted, finishing with the right status."""

from __future__ import annotations

import json
import os
from pathlib import Path

from tfrun.runner.records.record import REDACTED, Record, config_hash, redact, sanitize, write_json_atomic


def test_atomic_write_leaves_no_temp_files(tmp_path: Path):
    path = tmp_path / "record.json"
    for i in range(5):
        write_json_atomic(path, {"i": i})
    assert json.loads(path.read_text()) == {"i": 4}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


def test_redact_hides_secret_looking_keys_and_overrides():
    config = {"cloud": {"api_key": "abc", "project": "p", "token": None}, "db": {"password": "pw"}}
    assert redact(config) == {
        "cloud": {"api_key": REDACTED, "project": "p", "token": None},
        "db": {"password": REDACTED},
    }
    assert redact(["cloud.access_token=xyz", "train.epochs=3"]) == [f"cloud.access_token={REDACTED}", "train.epochs=3"]


def test_config_hash_ignores_key_order():
    assert config_hash({"a": 1, "b": {"c": 2}}) == config_hash({"b": {"c": 2}, "a": 1})
    assert config_hash({"a": 1}) != config_hash({"a": 2})


def test_sanitize_hides_working_dir(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sanitize(f'File "{tmp_path}/x.py", line 1') == 'File "./x.py", line 1'


def test_step_results_move_metrics_and_artifacts(tmp_path: Path):
    record = Record.start(tmp_path, run_id="r1", plan=["train", "export"])
    record.step_started("train")
    record.epoch({"loss": 1.0})
    record.epoch({"loss": 0.5})
    record.step_finished("train", 1.23456, {"summary": "s", "metrics": {"loss": 0.5}, "weights_sha256": "ab"})
    record.step_started("export")
    record.finish("failed", {"type": "X", "message": "boom"})
    data = json.loads((tmp_path / "record.json").read_text())
    assert data["metrics"] == {"history": {"loss": [1.0, 0.5]}, "final": {"loss": 0.5}}
    assert data["weights_sha256"] == "ab"
    assert [(s["name"], s["status"]) for s in data["steps"]] == [("train", "succeeded"), ("export", "failed")]
    assert data["steps"][0]["seconds"] == 1.235
    assert data["status"] == "failed" and data["error"]["message"] == "boom" and data["seconds"] >= 0
    assert os.listdir(tmp_path) == ["record.json"]


def test_a_moved_folder_updates_the_artifacts_inside_it(tmp_path: Path):
    """Issue 30: a rolled-back version's record still named models/m/0002, which the next export reused."""
    rec = Record.start(tmp_path, run_id="r")
    rec.step_started("export")
    rec.step_finished(
        "export", 1.0, {"artifacts": [{"kind": "saved_model", "path": "models/m/0002"}, {"kind": "x", "path": "other"}]}
    )
    rec.step_started("tfserving_push")
    warm = {"kind": "tfserving_warmup", "path": "models/m/0002/assets.extra/tf_serving_warmup_requests"}
    rec.step_finished("tfserving_push", 1.0, {"artifacts": [warm]})
    rec.step_started("tfserving_start")
    moved = "models/m/.rolled-back/0002-20260101-120000"
    rec.step_finished("tfserving_start", 1.0, {"moved": [{"path": "models/m/0002", "moved_to": moved}]})
    saved, other, warmup = rec.data["artifacts"]
    assert saved["path"] == "models/m/0002" and saved["moved_to"] == moved
    assert warmup["moved_to"] == moved + "/assets.extra/tf_serving_warmup_requests"
    assert "moved_to" not in other
    assert "moved" not in rec.data["steps"][-1]["result"]
