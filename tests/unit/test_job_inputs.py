"""What a job needs on disk is found by validation (tfrun.runner.config.job_inputs): one Problem, before anything runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from tfrun.runner.config import job_inputs


def _config(job: str, root: Path, **kw: object) -> SimpleNamespace:
    base, name = str(root / "models"), "m"
    return SimpleNamespace(
        job=SimpleNamespace(value=job),
        models_dir=kw.get("models_dir", base),
        model_name=name,
        rollback=SimpleNamespace(base_path=base, model_name=name, to_version=kw.get("to_version")),
        serve_web=SimpleNamespace(base_path=base, model_name=name, version=kw.get("version")),
    )


def test_rollback_needs_a_version_to_roll_back_to(tmp_path: Path):
    (problem,) = job_inputs.problems(_config("rollback", tmp_path))
    assert problem.key == "job" and "no versions in" in problem.allowed
    (tmp_path / "models/m/0001").mkdir(parents=True)
    (problem,) = job_inputs.problems(_config("rollback", tmp_path))
    assert "no previous version" in problem.allowed
    (tmp_path / "models/m/0002").mkdir()
    assert list(job_inputs.problems(_config("rollback", tmp_path))) == []


def test_serve_web_needs_a_bundle(tmp_path: Path):
    (problem,) = job_inputs.problems(_config("serve_web", tmp_path))
    assert "a page bundle to serve" in problem.allowed and "tfrun target=web" in problem.allowed
    (tmp_path / "models/m/0002.web").mkdir(parents=True)
    (tmp_path / "models/m/0002.web/index.html").write_text("<html>")
    assert list(job_inputs.problems(_config("serve_web", tmp_path))) == []
    assert len(list(job_inputs.problems(_config("serve_web", tmp_path, version=1)))) == 1


def test_training_needs_a_models_folder_it_can_write(tmp_path: Path):
    assert list(job_inputs.problems(_config("train", tmp_path))) == []
    (tmp_path / "afile").write_text("")
    (problem,) = job_inputs.problems(_config("train", tmp_path, models_dir=str(tmp_path / "afile/models")))
    assert problem.key == "models_dir" and "is a file, not a folder" in problem.allowed
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    found = list(job_inputs.problems(_config("train", tmp_path, models_dir=str(locked / "models"))))
    assert found == [] or "is not writable" in found[0].allowed  # root may write anywhere
