"""train.resume=true finds the newest unfinished run of the same config that has a backup."""

from __future__ import annotations

import json
from pathlib import Path

from tfrun.runner.records.resume import adopt_backup, latest_unfinished, resume_key


def _run(root: Path, name: str, *, key: str, status: str, started: str, backup: bool = True) -> Path:
    run_dir = root / "runs" / name
    run_dir.mkdir(parents=True)
    (run_dir / "record.json").write_text(json.dumps({"resume_key": key, "status": status, "started_at": started}))
    if backup:
        (run_dir / "backup" / "chief").mkdir(parents=True)
        (run_dir / "backup" / "chief" / "checkpoint").write_text(name)
    return run_dir


def test_resume_key_ignores_the_resume_flag_only():
    config = {"train": {"epochs": 3, "resume": True}}
    assert resume_key(config) == resume_key({"train": {"epochs": 3, "resume": False}})
    assert resume_key(config) != resume_key({"train": {"epochs": 4, "resume": True}})
    assert config["train"]["resume"] is True, "the caller's config is not changed"


def test_picks_newest_unfinished_with_backup(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _run(tmp_path, "old", key="k", status="failed", started="2026-01-01T00:00:00")
    newest = _run(tmp_path, "new", key="k", status="interrupted", started="2026-01-02T00:00:00")
    _run(tmp_path, "done", key="k", status="succeeded", started="2026-01-03T00:00:00")
    _run(tmp_path, "other", key="other", status="failed", started="2026-01-04T00:00:00")
    _run(tmp_path, "nobackup", key="k", status="failed", started="2026-01-05T00:00:00", backup=False)
    here = tmp_path / "runs" / "here"
    found = latest_unfinished("k", exclude=here)
    assert found is not None and found.resolve() == newest.resolve()
    here.mkdir()
    adopt_backup(found, here)
    assert (here / "backup" / "chief" / "checkpoint").read_text() == "new"
    assert (newest / "backup" / "chief" / "checkpoint").exists(), "the earlier run keeps its backup"


def test_nothing_to_resume(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert latest_unfinished("k", exclude=tmp_path / "runs" / "x") is None
